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
	uint32_t identity; /* 0 until the caller assigns one */
	uint64_t created_unix;
	struct zt_eval_endpoint ev; /* view for the evaluator and compiler (points into this) */
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
};

/*
 * Builds an endpoint from a spec. Checks every field and writes one line
 * naming the field and what is wrong. Does not look at the table or the
 * system (zt_ep_table_check does).
 */
int zt_ep_from_spec(const struct zt_ep_spec *s, struct zt_ep **out, char *err, size_t errlen);
void zt_ep_free(struct zt_ep *ep);

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

/* "198.18.1.2,2001:db8::2" */
int zt_ep_addrs_format(const struct zt_ep *ep, char *buf, size_t n);
/* "app=web,tier=front" */
int zt_labels_format(const struct zt_label *v, size_t n, char *buf, size_t len);

#endif
