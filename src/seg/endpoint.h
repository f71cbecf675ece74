/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Endpoints: the workloads whose host-side veths carry tc_endpoint.
 *
 * An endpoint is an interface name (and the ifindex it had when it was
 * registered), its addresses, its namespace, labels and namespace labels,
 * and optional named container ports. This module holds the table, checks
 * what operators register, and saves it to (and loads it from) a state
 * file so that endpoints survive a restart. Attaching programs and
 * compiling policy are the caller's (seg.c).
 *
 * Origin: "api" (ztctl endpoint add: the operator gives the labels) or
 * "cni" (the CNI plugin: a pod's sandbox, known by its container id and
 * container-side interface name, with the pod's namespace, name and UID).
 * A CNI endpoint is pending until the pod's labels arrive (the Kubernetes
 * watch, or `ztctl endpoint meta`): it has no labels and the reserved
 * identity ZT_ID_PENDING, which no selector matches and which
 * kubernetes.pending_posture isolates (or not).
 */
#ifndef ZT_ENDPOINT_H
#define ZT_ENDPOINT_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "seg/policy_eval.h"
#include "seg/selector.h"

#define ZT_EP_MAX 4096
#define ZT_EP_MAX_ADDRS 16
#define ZT_EP_MAX_LABELS 64
#define ZT_EP_MAX_PORTS 64
#define ZT_EP_NAME_MAX 253
#define ZT_EP_UID_MAX 128 /* a pod UID (a UUID: 36) */
#define ZT_EP_CID_MAX 256 /* a CNI container id */

enum zt_ep_origin {
	ZT_EP_ORIGIN_API = 0, /* ztctl endpoint add */
	ZT_EP_ORIGIN_CNI, /* the CNI plugin */
};

/* "api" | "cni" */
const char *zt_ep_origin_name(enum zt_ep_origin o);
/* -EINVAL for anything else */
int zt_ep_origin_parse(const char *s, enum zt_ep_origin *out);

struct zt_ep {
	uint32_t id; /* >= 1, never reused while the agent runs */
	char ifname[IF_NAMESIZE];
	int ifindex;
	char *name; /* endpoint name, unique in its namespace (default: ifname) */
	char *ns; /* namespace */
	char *qname; /* "namespace/name" */
	struct zt_label *labels; /* owned strings */
	size_t n_labels;
	struct zt_label *ns_labels;
	size_t n_ns_labels;
	struct zt_ep_addr addrs[ZT_EP_MAX_ADDRS];
	size_t n_addrs;
	struct zt_named_port *ports; /* owned names */
	size_t n_ports;
	uint32_t identity; /* 0 until the caller assigns one; ZT_ID_PENDING while pending */
	uint64_t created_unix;
	struct zt_eval_endpoint ev; /* view for the evaluator and compiler (points into this) */
	enum zt_ep_origin origin;
	bool pending; /* labels not known yet (origin cni only) */
	char *pod_uid; /* "" when not given */
	char *container_id; /* origin cni: CNI_CONTAINERID; else "" */
	char cni_ifname[IF_NAMESIZE]; /* origin cni: CNI_IFNAME (the pod's side); else "" */
	char *service_account; /* "" when not known */
	/*
	 * seg.c's, while the endpoint moves to another label identity: the old
	 * identity and a view of its label set, compiled beside the new one so
	 * that no packet meets a generation without entries for the identity
	 * the endpoints map still gives it. 0 otherwise.
	 */
	uint32_t prev_identity;
	struct zt_eval_endpoint prev_ev;
};

/* What an operator asks for (ztctl endpoint add), as text. */
struct zt_ep_spec {
	const char *ifname;
	const char *name; /* NULL or "": ifname */
	const char *ns; /* NULL or "": "default" */
	const char *addrs; /* "198.18.1.2,2001:db8::2" */
	const char *labels; /* "app=web,tier=front" ("" none) */
	const char *ns_labels; /* "env=prod" ("" none) */
	const char *ports; /* "http=8080/TCP,dns=53/UDP" ("" none) */
	enum zt_ep_origin origin; /* default api */
	bool pending; /* labels unknown: labels, ns_labels and ports must be empty */
	const char *pod_uid; /* NULL or "": none; 1-128 of A-Z a-z 0-9 - */
	const char *container_id; /* origin cni: required; 1-256 of A-Z a-z 0-9 _ . - */
	const char *cni_ifname; /* origin cni: required, an interface name */
	const char *service_account; /* NULL or "": unknown; else a DNS subdomain */
};

/*
 * Kubernetes metadata of a pod, as the watch knows it. Borrowed: the
 * caller keeps the strings for the duration of the call.
 */
struct zt_pod_meta {
	const char *ns;
	const char *name;
	const char *uid; /* NULL or "": join by namespace and name only */
	const struct zt_label *labels;
	size_t n_labels;
	const struct zt_label *ns_labels; /* kubernetes.io/metadata.name is implied */
	size_t n_ns_labels;
	const char *service_account; /* NULL or "": unknown */
	const struct zt_named_port *ports; /* named container ports */
	size_t n_ports;
	/* metadata.annotations (only ztagent.io/ ones are used; see seg/polgen.h) */
	const struct zt_label *annotations;
	size_t n_annotations;
	bool ns_annotations_known; /* false: the namespace's are left as they are */
	const struct zt_label *ns_annotations;
	size_t n_ns_annotations;
};

/* An endpoint's labels, namespace labels, named ports and service account, owned. */
struct zt_ep_meta {
	struct zt_label *labels;
	size_t n_labels;
	struct zt_label *ns_labels;
	size_t n_ns_labels;
	struct zt_named_port *ports;
	size_t n_ports;
	char *service_account;
};

/*
 * Builds an endpoint from a spec. Checks every field and writes one line
 * naming the field and what is wrong. Does not look at the table or the
 * system (zt_ep_table_check does).
 */
int zt_ep_from_spec(const struct zt_ep_spec *s, struct zt_ep **out, char *err, size_t errlen);
void zt_ep_free(struct zt_ep *ep);

/*
 * Checked copies of metadata for an endpoint of namespace ns: from a pod
 * (zt_pod_meta), or from text as `ztctl endpoint meta` sends it (labels
 * "k=v,...", ports "name=PORT/PROTO,..."). err names the field at fault.
 */
int zt_ep_meta_from_pod(const char *ns, const struct zt_pod_meta *m, struct zt_ep_meta *out,
			char *err, size_t errlen);
int zt_ep_meta_from_text(const char *ns, const char *labels, const char *ns_labels,
			 const char *ports, const char *service_account, struct zt_ep_meta *out,
			 char *err, size_t errlen);
/* Exchanges ep's metadata with m (and refreshes ep's view). */
void zt_ep_meta_swap(struct zt_ep *ep, struct zt_ep_meta *m);
/* Do ep's metadata equal m's (labels and ports in any order)? */
bool zt_ep_meta_same(const struct zt_ep *ep, const struct zt_ep_meta *m);
void zt_ep_meta_free(struct zt_ep_meta *m);

struct zt_ep_table {
	struct zt_ep **v; /* sorted by id */
	size_t n;
	uint32_t next_id;
};

/*
 * Can ep join t? The interface must exist (its ifindex is filled in), be
 * neither loopback nor already an endpoint; no address may belong to
 * another endpoint; namespace/name must be free.
 */
int zt_ep_table_check(const struct zt_ep_table *t, struct zt_ep *ep, char *err, size_t errlen);
/* Adds (takes ep), assigning the next id when ep->id is 0. */
int zt_ep_table_add(struct zt_ep_table *t, struct zt_ep *ep);
/* Removes and returns the endpoint (caller frees), or NULL. */
struct zt_ep *zt_ep_table_remove(struct zt_ep_table *t, uint32_t id);
/* By "ns/name", bare name (unique), or interface name; NULL if none or ambiguous (*ambiguous). */
struct zt_ep *zt_ep_table_find(const struct zt_ep_table *t, const char *s, bool *ambiguous);
struct zt_ep *zt_ep_table_by_ifindex(const struct zt_ep_table *t, int ifindex);
struct zt_ep *zt_ep_table_by_id(const struct zt_ep_table *t, uint32_t id);
/* The CNI endpoint of (container id, container interface), or NULL. */
struct zt_ep *zt_ep_table_by_container(const struct zt_ep_table *t, const char *container_id,
				       const char *cni_ifname);
/* By namespace and name exactly, or NULL. */
struct zt_ep *zt_ep_table_by_qname(const struct zt_ep_table *t, const char *ns, const char *name);
void zt_ep_table_clear(struct zt_ep_table *t);

/*
 * State file: CBOR, written to a temporary file, fsynced and renamed.
 * Load: a missing file is an empty table; a damaged one (-EBADMSG, also
 * for a file over 64 MiB or not a regular file) is an error naming the file
 * and what is wrong (the caller moves it aside).
 */
int zt_ep_table_save(const struct zt_ep_table *t, const char *path, char *err, size_t errlen);
int zt_ep_table_load(struct zt_ep_table *t, const char *path, char *err, size_t errlen);
/*
 * The state file's content, from memory (name is used in messages). CBOR is
 * pre-scanned before anything is allocated; every record is checked as an
 * operator's endpoint is. 0; -EBADMSG (damaged: err says where) with t left
 * empty; -ENOMEM.
 */
int zt_ep_table_decode(struct zt_ep_table *t, const uint8_t *buf, size_t len, const char *name,
		       char *err, size_t errlen);

/*
 * New metadata for an endpoint, in the steps seg.c publishes in between:
 * begin takes m's content (m is left empty), moves the endpoint to the label
 * identity of its new label set (a reference from ids; a pending endpoint
 * stops being pending) and keeps the old identity as prev_identity (with a
 * view of its label set for the compiler: zt_ep_table_polc); the caller then
 * publishes, writes the endpoints map, and commits (the old identity's
 * reference and metadata go) or undoes (the endpoint is as it was). Between
 * begin and commit/undo nothing else may change the endpoint.
 */
struct zt_identities;
struct zt_ep_relabel {
	uint32_t old_id;
	bool was_pending;
	struct zt_ep_meta old; /* the endpoint's metadata before */
};
int zt_ep_relabel_begin(struct zt_ep *ep, struct zt_identities *ids, struct zt_ep_meta *m,
			struct zt_ep_relabel *rl, char *err, size_t errlen);
void zt_ep_relabel_commit(struct zt_ep *ep, struct zt_identities *ids, struct zt_ep_relabel *rl);
void zt_ep_relabel_undo(struct zt_ep *ep, struct zt_identities *ids, struct zt_ep_relabel *rl);

/*
 * The table as the policy compiler takes it. out has room for 2 * t->n + 1
 * entries; returns how many it filled: each endpoint with its identity, and
 * one more without addresses for an endpoint moving off a label identity
 * (prev_identity), so that the generation published for the move still has
 * the old identity's entries for packets the endpoints map still gives it.
 * *pending: some endpoint is pending or leaving ZT_ID_PENDING (the
 * compiler's pending_isolated when the posture is deny).
 */
struct zt_polc_endpoint;
size_t zt_ep_table_polc(const struct zt_ep_table *t, struct zt_polc_endpoint *out, bool *pending);

/* "198.18.1.2,2001:db8::2" */
int zt_ep_addrs_format(const struct zt_ep *ep, char *buf, size_t n);

struct cbor_item_t;
/* Labels as a CBOR map (key: value), for the state file and the API; NULL: out of memory. */
struct cbor_item_t *zt_ep_labels_cbor(const struct zt_label *v, size_t n);
/* "app=web,tier=front" */
int zt_labels_format(const struct zt_label *v, size_t n, char *buf, size_t len);

#endif
