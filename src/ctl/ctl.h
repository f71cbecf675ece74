/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * ztctl, the operator's command line, is split the way bpftool is: main.c
 * parses the command line and dispatches, output.c formats, client.c talks
 * to the daemon's unix-socket API (agent/apimsg.h frames, agent/apiops.h
 * operations), and one file per command group (status.c, block.c,
 * endpoint.c, policy.c, flows.c, audit.c, ca.c, feeds.c, incidents.c, alerts.c,
 * compliance.c) holds its commands and their help.
 *
 * Exit codes: 0 done, 1 the daemon refused or the operation failed,
 * 2 usage error, 3 the daemon cannot be reached.
 */
#ifndef ZT_CTL_H
#define ZT_CTL_H

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "agent/apimsg.h"
#include "agent/apiops.h"
#include "agent/daemon.h"
#include "agent/util.h"
#include "ztagent.h"

#define EXIT_OK 0
#define EXIT_FAIL 1
#define EXIT_USAGE 2
#define EXIT_UNREACHABLE 3

#define TIMEOUT_S 30
#define DETACH_WAIT_S 15
#define IMPORT_CHUNK 262144 /* cidrs per block.import request */
#define REPORT_MAX 10 /* bad lines shown one by one */
#define LIST_DEFAULT_LIMIT 10000

struct ctl {
	const char *sock;
	bool json;
	int fd;
	int send_err; /* the last call_send's zt_msg_send result */
};

struct cmd;

/* Options, whichever command they belong to. */
struct opts {
	const struct cmd *cmd;
	uint64_t ttl_s;
	bool has_ttl;
	const char *reason, *kind, *source;
	uint64_t feed_id;
	bool has_feed_id;
	uint64_t limit;
	/* endpoint add */
	const char *ifname, *ip, *labels, *ns, *name, *ns_labels, *ports;
	const char *service_account; /* endpoint add / meta --service-account */
	/* policy explain */
	const char *from, *to, *port;
	/* flows */
	bool follow;
	const char *verdict;
	/* audit verify */
	const char *db;
	/* incidents list */
	const char *state;
	/* policy diff --against */
	const char *against;
	/* block list --feed, feeds refresh --force */
	const char *feed;
	bool force;
	/* ca init / issue-node */
	const char *trust_domain, *out, *ca_dir, *csr;
	uint64_t days;
	bool has_days;
	/* compliance report */
	const char *format, *outfile;
	uint64_t since_s, audit_age_s;
	bool has_since, has_audit_age;
	/* policy suggest; endpoint add --annotation */
	const char *mode, *annotation;
	uint64_t min_flows;
	char **args; /* positional arguments */
	int nargs;
};

enum opt_bit {
	OPT_TTL = 1 << 0,
	OPT_REASON = 1 << 1,
	OPT_KIND = 1 << 2,
	OPT_SOURCE = 1 << 3,
	OPT_FEED_ID = 1 << 4,
	OPT_LIMIT = 1 << 5,
	OPT_EP = 1 << 6, /* --ifname --ip --labels --namespace --name --namespace-labels --ports */
	OPT_EXPLAIN = 1 << 7, /* --from --to --port */
	OPT_FOLLOW = 1 << 8,
	OPT_VERDICT = 1 << 9,
	OPT_DB = 1 << 10, /* --db CONNINFO */
	OPT_CA = 1 << 11, /* --trust-domain --out --ca --days --csr */
	OPT_FEED = 1 << 12, /* --feed NAME */
	OPT_FORCE = 1 << 13, /* --force */
	OPT_STATE = 1 << 14, /* --state open|closed|all */
	OPT_COMPLIANCE = 1 << 15, /* --format --audit-age, -o FILE */
	OPT_AGAINST = 1 << 16, /* --against DIR|NODE */
	OPT_SUGGEST = 1 << 17, /* --mode --min-flows */
	OPT_SINCE = 1 << 18, /* --since DURATION */
};

struct cmd {
	const char *name; /* "block add" */
	const char *usage; /* the usage line, without "Usage: " */
	const char *help; /* what it does, options, examples */
	unsigned int opts; /* enum opt_bit accepted */
	int min_args, max_args;
	const char *arg_name; /* of the positional argument, for "missing CIDR" */
	int (*run)(struct ctl *ctl, struct opts *o);
};

/* A group's commands, defined in its own file. */
extern const struct cmd ctl_status_cmds[], ctl_block_cmds[], ctl_endpoint_cmds[], ctl_policy_cmds[],
	ctl_flows_cmds[], ctl_audit_cmds[], ctl_ca_cmds[], ctl_feeds_cmds[], ctl_compliance_cmds[];
extern const size_t ctl_status_ncmds, ctl_block_ncmds, ctl_endpoint_ncmds, ctl_policy_ncmds,
	ctl_flows_ncmds, ctl_audit_ncmds, ctl_ca_ncmds, ctl_feeds_ncmds, ctl_compliance_ncmds;
/* incidents.c, alerts.c */
extern const struct cmd ctl_incidents_cmds[], ctl_alerts_cmds[];
extern const size_t ctl_incidents_ncmds, ctl_alerts_ncmds;
/* cluster.c */
extern const struct cmd ctl_cluster_cmds[];
extern const size_t ctl_cluster_ncmds;
/* gen.c */
extern const struct cmd ctl_gen_cmds[];
extern const size_t ctl_gen_ncmds;
/* gen.c: an annotation for an endpoint about to be added (undo: remove it again). */
int ctl_annotate_new_endpoint(struct ctl *ctl, const struct cmd *c, const char *ns,
			      const char *name, const char *kv, bool undo);
/* mtls.c */
extern const struct cmd ctl_mtls_cmds[];
extern const size_t ctl_mtls_ncmds;

/* main.c */
int usage_err(const struct cmd *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool one_of(const char *s, const char *const *list, size_t n);
int cidr_arg(const struct cmd *c, const char *s, char *norm, size_t n);

/* output.c: text from the daemon is cleaned of control characters. */
void die_nomem(void) __attribute__((noreturn));
void clean(char *s);
uint64_t u64_of(const cbor_item_t *m, const char *key);
int64_t i64_of(const cbor_item_t *m, const char *key);
bool bool_of(const cbor_item_t *m, const char *key);
const char *str_of(const cbor_item_t *m, const char *key, char *buf, size_t n, const char *dflt);
size_t arr_len(const cbor_item_t *a);
const cbor_item_t *arr_at(const cbor_item_t *a, size_t i);
const char *iso_time(uint64_t unix_s, char *buf, size_t n);
const char *duration_s(uint64_t s, char *buf, size_t n);
const char *expiry(uint64_t expires_unix, bool expired, char *buf, size_t n);
void print_json(const cbor_item_t *data);
void print_json_at(const cbor_item_t *item, int depth);

/* A table: columns sized to their widest cell, numbers right-aligned. */
struct table {
	int ncols;
	const char *const *heads;
	const bool *right;
	char **cells; /* rows * ncols, malloc'd */
	size_t rows, cap;
};

void table_add(struct table *t, ...);
void table_print(struct table *t);
/* Listings in pages: prints and forgets the rows so far; w[ncols] starts at zero. */
void table_print_page(struct table *t, size_t *w, bool *headed);
void table_free(struct table *t);

/* client.c */
cbor_item_t *request(const char *op);
void put_str(cbor_item_t *m, const char *key, const char *v);
void put_u64(cbor_item_t *m, const char *key, uint64_t v);
int call(struct ctl *ctl, cbor_item_t *req, cbor_item_t **reply, const cbor_item_t **data);
int call_send(struct ctl *ctl, cbor_item_t *req);
int call_recv(struct ctl *ctl, cbor_item_t **reply, const cbor_item_t **data);

/* A ring of the daemon's, listed once or followed (ztctl alerts, ztctl flows). */
struct ring_stream {
	const char *op; /* ZT_OP_* that answers { <list_key>: [...], last, missed } */
	const char *list_key;
	const char *what; /* for the "overwritten" warning */
	uint64_t default_limit;
	unsigned interval_us; /* between polls with --follow */
	void (*add_filters)(cbor_item_t *req, const struct opts *o); /* may be NULL */
	void (*print)(struct ctl *ctl, const cbor_item_t *item);
};
int stream_ring(struct ctl *ctl, struct opts *o, const struct ring_stream *rs);

#endif
