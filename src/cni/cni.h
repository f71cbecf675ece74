/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * ztagent-cni, the chained CNI plugin (CNI specification 1.0.0; results of
 * 0.3.0, 0.3.1 and 0.4.0 accepted too). This header is its pure part:
 * the network configuration and prevResult (json-c), CNI_ARGS, and the
 * error object, all testable without a runtime, a namespace or a daemon.
 * main.c runs the commands, netns.c finds interfaces, client.c talks to
 * the daemon's API socket.
 *
 * Everything read here comes from the runtime (stdin, environment): it is
 * bounded (ZT_CNI_MAX_STDIN, nesting, counts, string lengths) and refused
 * with a CNI error naming the field.
 */
#ifndef ZT_CNI_H
#define ZT_CNI_H

#include <limits.h>
#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/un.h>

#include <json-c/json.h>

#define ZT_CNI_MAX_STDIN (1u << 20) /* a network configuration is a few KiB */
#define ZT_CNI_JSON_DEPTH 32
#define ZT_CNI_MAX_IFACES 64
#define ZT_CNI_MAX_IPS 64
#define ZT_CNI_DEFAULT_TIMEOUT_NS (10ULL * 1000000000ULL)
#define ZT_CNI_DEFAULT_STATE_DIR "/var/lib/ztagent"
#define ZT_CNI_LATEST "1.0.0"

/* Error codes (CNI specification, "Error"); 100 and up are ours. */
enum {
	ZT_CNI_E_VERSION = 1, /* incompatible CNI version */
	ZT_CNI_E_FIELD = 2, /* unsupported field in the network configuration */
	ZT_CNI_E_CONTAINER = 3, /* container unknown or does not exist */
	ZT_CNI_E_ENV = 4, /* invalid necessary environment variables */
	ZT_CNI_E_IO = 5, /* I/O failure */
	ZT_CNI_E_DECODE = 6, /* failed to decode content */
	ZT_CNI_E_CONFIG = 7, /* invalid network configuration */
	ZT_CNI_E_TRY_LATER = 11, /* try again later: the daemon is not there (yet) */
	ZT_CNI_E_REFUSED = 100, /* the daemon refused the request; msg says why */
	ZT_CNI_E_NOT_ENFORCED = 101, /* CHECK: the endpoint is missing or not enforced */
	ZT_CNI_E_INTERFACE = 102, /* no host-side veth for the container's interface */
};

struct zt_cni_err {
	int code;
	char msg[512];
	char details[2048];
};

/* Sets e (code, msg from fmt) and returns -code. details may be NULL. */
int zt_cni_fail(struct zt_cni_err *e, int code, const char *details, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/*
 * The error object as JSON text, one line (malloc'd; NULL only when out of
 * memory): {"cniVersion": version (ZT_CNI_LATEST when NULL or empty), "code",
 * "msg", "details" (left out when empty)}.
 */
char *zt_cni_err_json(const char *version, const struct zt_cni_err *e);

/* The versions this plugin speaks: 0.3.0, 0.3.1, 0.4.0, 1.0.0. */
extern const char *const zt_cni_versions[];
bool zt_cni_version_ok(const char *v);
/* a >= b for dotted versions of the list above ("0.4.0" >= "0.3.1"). */
bool zt_cni_version_ge(const char *a, const char *b);

/*
 * The network configuration (stdin). Our keys, all optional:
 *   "socket"     the daemon's API socket (default /run/ztagent/api.sock)
 *   "timeout"    how long to wait for the daemon: seconds (a number) or a
 *                duration text ("5s", "1500ms"); 100 ms to 5 min, default 10 s
 *   "state_dir"  where a DEL is queued when the daemon is down (its
 *                cni-pending/ directory), matching the daemon's state_dir;
 *                default /var/lib/ztagent
 * Keys the runtime adds ("runtimeConfig", "args", "capabilities", ...) are
 * ignored.
 */
struct zt_cni_conf {
	char version[16];
	char name[256];
	char type[64];
	char socket[sizeof(((struct sockaddr_un *)0)->sun_path)];
	uint64_t timeout_ns;
	char state_dir[PATH_MAX];
	json_object *root; /* owned */
	json_object *prev; /* prevResult inside root; NULL when absent */
	/* prevResult's text as it came (the runtime's bytes, echoed on ADD). */
	const char *prev_text;
	size_t prev_len;
};

/*
 * Parses buf[0..len) (kept: prev_text points into it). need_prev: prevResult
 * is required (ADD, CHECK). Returns 0 or -code with e set: 6 for text that is
 * not one JSON object, 1 for an unsupported cniVersion, 7 for a missing or
 * wrong key.
 */
int zt_cni_conf_parse(const char *buf, size_t len, bool need_prev, struct zt_cni_conf *c,
		      struct zt_cni_err *e);
void zt_cni_conf_free(struct zt_cni_conf *c);

/*
 * CNI_ARGS: "K=V;K=V". K8S_POD_NAMESPACE, K8S_POD_NAME and K8S_POD_UID are
 * taken (checked as Kubernetes names); every other key is ignored
 * (IgnoreUnknown is implied: runtimes pass K8S_POD_INFRA_CONTAINER_ID and
 * others). A pair without '=', an empty key, a known key twice or a value
 * too long or malformed is an error (code 4). NULL or "" is no args.
 */
struct zt_cni_args {
	char ns[64];
	char name[254];
	char uid[129];
};
int zt_cni_args_parse(const char *s, struct zt_cni_args *a, struct zt_cni_err *e);

/* The parts of prevResult we use. */
struct zt_cni_iface {
	char name[IF_NAMESIZE];
	bool in_sandbox; /* "sandbox" present and not empty: inside a container */
};

struct zt_cni_ip {
	int family; /* AF_INET | AF_INET6 */
	uint8_t addr[16];
	int iface; /* index into interfaces, -1 when the result does not say */
};

struct zt_cni_prev {
	struct zt_cni_iface ifs[ZT_CNI_MAX_IFACES];
	size_t n_ifs;
	struct zt_cni_ip ips[ZT_CNI_MAX_IPS];
	size_t n_ips;
	int container; /* interfaces entry of CNI_IFNAME with a sandbox; -1 none */
};

/*
 * interfaces[] and ips[] of a result of any supported version (0.3.x/0.4.0
 * ips carry "version" and may omit "interface"; 1.0.0 has no "version").
 * ifname is CNI_IFNAME. 0, or -7 with e naming the field (an address that
 * is not one, an interface index out of range, a name that is no interface
 * name, more than ZT_CNI_MAX_* entries).
 */
int zt_cni_prev_parse(json_object *prev, const char *ifname, struct zt_cni_prev *p,
		      struct zt_cni_err *e);
/*
 * The container's addresses, "A,B" (no prefix length): ips of the
 * container's interface, or without an interface; never those of a host-side
 * interface. 0 with *count >= 1, or -7 (none; more than 16).
 */
int zt_cni_prev_addrs(const struct zt_cni_prev *p, char *buf, size_t n, size_t *count,
		      struct zt_cni_err *e);

/*
 * Where the value of top-level member key is in the JSON object text
 * buf[0..len) (already validated by json-c): *off, *n. The last member of
 * that name wins, as json-c's does. 0, or -ENOENT / -EINVAL.
 */
int zt_cni_member_span(const char *buf, size_t len, const char *key, size_t *off, size_t *n);

#endif
