// SPDX-License-Identifier: GPL-2.0-only
/*
 * The configuration file: one YAML mapping, read with libyaml's event API.
 *
 * Every key is a row in keys[] (full dotted path, kind, setter, field,
 * limits). A new section is a K_SECTION row plus one row per key under it;
 * a new kind of value is one setter. The walk never recurses on input: it
 * only descends into sections the table names, so nesting depth is bounded
 * by the table, not by the file.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <sys/un.h>
#include <unistd.h>
#include <yaml.h>

#include "agent/config.h"
#include "agent/util.h"
#include "ztagent.h"

#define MAX_FILE (1u << 20)
#define SHOW_MAX 40 /* bytes of a found value quoted in a message */
#define KEY_MAX 64 /* longer keys are unknown without looking */
#define SUN_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)

struct pctx;
struct key;

/*
 * Checks one scalar (or one list item) and stores it into the config. For a
 * K_LIST, x->item is the item's index and v is NULL for an empty list ([]).
 */
typedef int (*setter_fn)(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m);

enum kind {
	K_SECTION, /* a mapping of further keys: "<path>.<key>" rows */
	K_SCALAR, /* one value; set() is called once */
	K_LIST, /* a sequence of scalars; set() is called per item, x->item counts */
	K_ITEMS, /* a sequence of mappings, each of "<path>.<key>" rows with .in_item */
};

struct choice {
	const char *name;
	uint64_t value;
};

struct key {
	const char *path;
	enum kind kind;
	setter_fn set;
	size_t off, size; /* the field in struct zt_config */
	uint64_t min, max;
	const struct choice *choices; /* set_choice: NULL-terminated */
	bool in_item; /* a key of a K_ITEMS item: off is from the item's start */
	/* K_ITEMS: size of one item, where the count is, defaults and checks of one item. */
	size_t stride, count_off;
	void (*item_init)(void *item);
	int (*item_check)(struct pctx *x, const struct key *k, const yaml_mark_t *m);
};

struct pctx {
	yaml_parser_t parser;
	const char *buf;
	size_t len;
	const char *name;
	struct zt_config *c;
	yaml_mark_t seen[192]; /* where each key was first set; line 0 = not yet */
	unsigned int item; /* K_LIST, K_ITEMS: index of the item being set */
	void *item_base; /* K_ITEMS: the item being filled */
	char *err;
	size_t errlen;
};

static int set_node(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m);
static int set_dir(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m);
static int set_sock(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m);
static int set_choice(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m);
static int set_uint(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m);
static int set_size_pow2(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m);
static int set_duration(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m);
static int add_iface(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m);
static int set_size(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m);
static int set_text(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m);
static int set_listen(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m);
static int set_feed_name(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m);
static int set_feed_url(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m);
static int set_file(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m);
static int set_fraction(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m);
static int check_feed(struct pctx *x, const struct key *k, const yaml_mark_t *m);
static void feed_init(void *item);
static int set_trust_domain(struct pctx *x, const struct key *k, const char *v,
			    const yaml_mark_t *m);
static int add_protected(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m);
static int check_detection(struct pctx *x);
static int default_forensics_dir(struct pctx *x);
static int set_opt_file(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m);
static int set_k8s_name(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m);
static int add_mtls_peer(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m);

static const struct choice log_levels[] = {
	{ "error", ZT_LOG_ERROR },
	{ "warn", ZT_LOG_WARN },
	{ "info", ZT_LOG_INFO },
	{ "debug", ZT_LOG_DEBUG },
	{ NULL, 0 },
};
/* In enum order: zt_xdp_mode_name() indexes it. */
static const struct choice xdp_modes[] = {
	{ "native", ZT_XDP_NATIVE },
	{ "generic", ZT_XDP_GENERIC },
	{ "auto", ZT_XDP_AUTO },
	{ "tc", ZT_XDP_TC },
	{ NULL, 0 },
};
static const struct choice policy_defaults[] = {
	{ "deny", true },
	{ "allow", false },
	{ NULL, 0 },
};
static const struct choice mtls_modes[] = {
	{ "off", ZT_MTLS_MODE_OFF },
	{ "policy", ZT_MTLS_MODE_POLICY },
	{ "strict", ZT_MTLS_MODE_STRICT },
	{ NULL, 0 },
};
static const struct choice response_modes[] = {
	{ "off", ZT_RESPONSE_OFF },
	{ "alert", ZT_RESPONSE_ALERT },
	{ "block", ZT_RESPONSE_BLOCK },
	{ NULL, 0 },
};
static const struct choice endpoint_modes[] = {
	{ "alert", ZT_RESPONSE_ALERT },
	{ "block", ZT_RESPONSE_BLOCK },
	{ NULL, 0 },
};
static const struct choice booleans[] = {
	{ "true", true },
	{ "false", false },
	{ NULL, 0 },
};
/* In enum order: zt_pending_posture_name() indexes it. */
static const struct choice pending_postures[] = {
	{ "deny", ZT_PENDING_DENY },
	{ "allow", ZT_PENDING_ALLOW },
	{ NULL, 0 },
};
static const struct choice malformed_actions[] = {
	{ "drop", true },
	{ "pass", false },
	{ NULL, 0 },
};
/* In enum order: zt_feed_format_name() indexes it. */
static const struct choice feed_formats[] = {
	{ "cidr", ZT_FEED_CIDR },
	{ "firehol", ZT_FEED_FIREHOL },
	{ "spamhaus-json", ZT_FEED_SPAMHAUS_JSON },
	{ "feodo-csv", ZT_FEED_FEODO_CSV },
	{ "stix2", ZT_FEED_STIX2 },
	{ "misp", ZT_FEED_MISP },
	{ "policy", ZT_FEED_POLICY },
	{ NULL, 0 },
};
_Static_assert(ZT_ARRAY_SIZE(feed_formats) == ZT_FEED_FORMAT_COUNT + 1,
	       "feed_formats[] must list every enum zt_feed_format");
static const struct choice feed_directions[] = {
	{ "source", ZT_FEED_SOURCE },
	{ "destination", ZT_FEED_DESTINATION },
	{ "both", ZT_FEED_BOTH },
	{ NULL, 0 },
};
static const struct choice feed_actions[] = {
	{ "block", ZT_FEED_BLOCK },
	{ "alert", ZT_FEED_ALERT },
	{ NULL, 0 },
};

#define FIELD(f) .off = offsetof(struct zt_config, f), .size = sizeof(((struct zt_config *)0)->f)
#define SECTION(p)                           \
	{                                    \
		.path = p, .kind = K_SECTION \
	}
#define SCALAR(p, fn, f, ...)                                                 \
	{                                                                     \
		.path = p, .kind = K_SCALAR, .set = fn, FIELD(f), __VA_ARGS__ \
	}
#define LIST(p, fn, f, ...)                                                 \
	{                                                                   \
		.path = p, .kind = K_LIST, .set = fn, FIELD(f), __VA_ARGS__ \
	}
/* A key of one item of a K_ITEMS list: the field is in struct zt_feed_config. */
#define FEED(p, fn, f, ...)                                                  \
	{                                                                    \
		.path = p, .kind = K_SCALAR, .set = fn, .in_item = true,     \
		.off = offsetof(struct zt_feed_config, f),                   \
		.size = sizeof(((struct zt_feed_config *)0)->f), __VA_ARGS__ \
	}
#define MS 1000000ULL
#define SEC 1000000000ULL

/* Path, setter, field, limits. Later sections (policy, database, ...) add rows here. */
static const struct key keys[] = {
	SCALAR("node", set_node, node),
	SCALAR("bpffs", set_dir, bpffs),
	SCALAR("api_socket", set_sock, api_socket),
	SCALAR("log_level", set_choice, log_level, .choices = log_levels),

	SECTION("xdp"),
	LIST("xdp.interfaces", add_iface, xdp.interfaces, .max = ZT_MAX_IFACES),
	SCALAR("xdp.mode", set_choice, xdp.mode, .choices = xdp_modes),
	SCALAR("xdp.malformed", set_choice, xdp.malformed_drop, .choices = malformed_actions),
	SCALAR("xdp.blocklist_max", set_uint, xdp.blocklist_max, .min = 1, .max = 16777216),
	SCALAR("xdp.allowlist_max", set_uint, xdp.allowlist_max, .min = 1, .max = 1048576),
	SCALAR("xdp.event_sample", set_uint, xdp.event_sample, .min = 1, .max = 1000000),
	SCALAR("xdp.event_rate", set_uint, xdp.event_rate, .min = 0, .max = 10000000),
	SCALAR("xdp.ringbuf_bytes", set_size_pow2, xdp.ringbuf_bytes, .min = 4096,
	       .max = 1ULL << 30),
	SCALAR("xdp.expiry_interval", set_duration, xdp.expiry_interval_ns, .min = 100 * MS,
	       .max = 3600 * SEC),

	SCALAR("state_dir", set_dir, state_dir),

	SECTION("policy"),
	SCALAR("policy.dir", set_dir, policy.dir),
	SCALAR("policy.default", set_choice, policy.default_deny, .choices = policy_defaults),
	SCALAR("policy.conntrack_max", set_uint, policy.conntrack_max, .min = 1024,
	       .max = 16777216),

	SECTION("database"),
	SCALAR("database.url", set_text, database.url),
	SCALAR("database.spool_dir", set_dir, database.spool_dir),
	SCALAR("database.spool_max_bytes", set_size, database.spool_max_bytes, .min = 1u << 20,
	       .max = 1ULL << 50),
	SCALAR("database.retention_months", set_uint, database.retention_months, .min = 1,
	       .max = 1200),

	SECTION("flows"),
	SCALAR("flows.active_timeout", set_duration, flows.active_timeout_ns, .min = 1 * SEC,
	       .max = 86400 * SEC),

	SECTION("metrics"),
	SCALAR("metrics.listen", set_listen, metrics.listen),

	{ .path = "feeds",
	  .kind = K_ITEMS,
	  FIELD(feeds),
	  .max = ZT_MAX_FEEDS,
	  .stride = sizeof(struct zt_feed_config),
	  .count_off = offsetof(struct zt_config, n_feeds),
	  .item_init = feed_init,
	  .item_check = check_feed },
	FEED("feeds.name", set_feed_name, name),
	FEED("feeds.url", set_feed_url, url),
	FEED("feeds.format", set_choice, format, .choices = feed_formats),
	FEED("feeds.refresh", set_duration, refresh_ns, .min = 1 * SEC, .max = 7 * 86400 * SEC),
	FEED("feeds.direction", set_choice, direction, .choices = feed_directions),
	FEED("feeds.action", set_choice, action, .choices = feed_actions),
	FEED("feeds.max_entries", set_uint, max_entries, .min = 1, .max = 16777216),
	FEED("feeds.ca_bundle", set_file, ca_bundle),
	FEED("feeds.timeout", set_duration, timeout_ns, .min = 1 * SEC, .max = 3600 * SEC),
	FEED("feeds.max_bytes", set_size, max_bytes, .min = 1024, .max = 4ULL << 30),
	FEED("feeds.max_bad_fraction", set_fraction, max_bad_ppm, .max = 1000000),
	FEED("feeds.retries", set_uint, retries, .min = 0, .max = 10),
	SECTION("mtls"),
	SCALAR("mtls.mode", set_choice, mtls.mode, .choices = mtls_modes),
	SCALAR("mtls.trust_domain", set_trust_domain, mtls.trust_domain),
	SCALAR("mtls.ca_bundle", set_file, mtls.ca_bundle),
	SCALAR("mtls.node_cert", set_file, mtls.node_cert),
	SCALAR("mtls.node_key", set_file, mtls.node_key),
	SCALAR("mtls.svid_ttl", set_duration, mtls.svid_ttl_ns, .min = 10 * SEC,
	       .max = 7 * 86400 * SEC),
	SCALAR("mtls.port", set_uint, mtls.port, .min = 1, .max = 65535),
	LIST("mtls.peers", add_mtls_peer, mtls.peers, .max = ZT_MTLS_PEERS_MAX),
	SECTION("kubernetes"),
	SCALAR("kubernetes.enabled", set_choice, kubernetes.enabled, .choices = booleans),
	SCALAR("kubernetes.kubeconfig", set_opt_file, kubernetes.kubeconfig),
	SCALAR("kubernetes.node_name", set_k8s_name, kubernetes.node_name),
	SCALAR("kubernetes.pending_posture", set_choice, kubernetes.pending_posture,
	       .choices = pending_postures),

	/* Threat detection (src/detect/), response (src/respond/), forensics. */
	SECTION("detection"),
	SCALAR("detection.feature_log", set_file, detection.feature_log),
	SCALAR("detection.model", set_file, detection.model),
	SCALAR("detection.target_fpr", set_fraction, detection.target_fpr_ppm, .max = 499999),
	LIST("detection.protected", add_protected, detection.protected_cidrs,
	     .max = ZT_MAX_PROTECTED),
	SCALAR("detection.sweep_interval", set_duration, detection.sweep_interval_ns,
	       .min = 100 * MS, .max = 60 * SEC),
	SCALAR("detection.realtime_priority", set_uint, detection.realtime_priority, .max = 99),
	SECTION("detection.scan"),
	SCALAR("detection.scan.theta0", set_fraction, detection.scan.theta0_ppm, .max = 999999),
	SCALAR("detection.scan.theta1", set_fraction, detection.scan.theta1_ppm, .max = 999999),
	SCALAR("detection.scan.alpha", set_fraction, detection.scan.alpha_ppm, .max = 999999),
	SCALAR("detection.scan.beta", set_fraction, detection.scan.beta_ppm, .max = 999999),
	SCALAR("detection.scan.probe_timeout", set_duration, detection.scan.probe_timeout_ns,
	       .min = 100 * MS, .max = 60 * SEC),
	SCALAR("detection.scan.max_sources", set_uint, detection.scan.max_sources, .min = 16,
	       .max = 16777216),
	SCALAR("detection.scan.brake", set_uint, detection.scan.brake, .max = 65535),
	SECTION("detection.flood"),
	SCALAR("detection.flood.window", set_duration, detection.flood.window_ns, .min = 10 * MS,
	       .max = 10 * SEC),
	SCALAR("detection.flood.syn", set_uint, detection.flood.syn, .max = 100000000),
	SCALAR("detection.flood.udp", set_uint, detection.flood.udp, .max = 100000000),
	SCALAR("detection.flood.icmp", set_uint, detection.flood.icmp, .max = 100000000),
	SCALAR("detection.flood.all", set_uint, detection.flood.all, .max = 100000000),
	SCALAR("detection.flood.out_of_state", set_uint, detection.flood.out_of_state,
	       .max = 100000000),
	SCALAR("detection.flood.dst_factor", set_uint, detection.flood.dst_factor, .min = 1,
	       .max = 100000),
	SECTION("detection.bruteforce"),
	SCALAR("detection.bruteforce.min_attempts", set_uint, detection.bruteforce.min_attempts,
	       .min = 2, .max = 64),
	SCALAR("detection.bruteforce.window", set_duration, detection.bruteforce.window_ns,
	       .min = 1 * SEC, .max = 86400 * SEC),
	SCALAR("detection.bruteforce.refused_window", set_duration,
	       detection.bruteforce.refused_window_ns, .min = 1 * SEC, .max = 86400 * SEC),
	SCALAR("detection.bruteforce.max_duration", set_duration,
	       detection.bruteforce.max_duration_ns, .min = 100 * MS, .max = 3600 * SEC),
	SECTION("detection.slowconn"),
	SCALAR("detection.slowconn.min_conns", set_uint, detection.slowconn.min_conns, .min = 2,
	       .max = 1000000),
	SCALAR("detection.slowconn.min_age", set_duration, detection.slowconn.min_age_ns,
	       .min = 500 * MS, .max = 3600 * SEC),
	SCALAR("detection.slowconn.max_rate", set_uint, detection.slowconn.max_rate, .min = 1,
	       .max = 1000000000),
	SECTION("detection.exfiltration"),
	SCALAR("detection.exfiltration.interval", set_duration, detection.exfiltration.interval_ns,
	       .min = 1 * SEC, .max = 86400 * SEC),
	SCALAR("detection.exfiltration.min_bytes", set_size, detection.exfiltration.min_bytes,
	       .min = 1, .max = 1ULL << 50),
	SCALAR("detection.exfiltration.new_dest_bytes", set_size,
	       detection.exfiltration.new_dest_bytes, .min = 1, .max = 1ULL << 50),
	SCALAR("detection.exfiltration.warmup", set_uint, detection.exfiltration.warmup, .min = 1,
	       .max = 100000),

	SECTION("response"),
	SCALAR("response.mode", set_choice, response.mode, .choices = response_modes),
	SCALAR("response.block_ttl", set_duration, response.block_ttl_ns, .min = 1 * SEC,
	       .max = 86400 * SEC),
	SCALAR("response.max_ttl", set_duration, response.max_ttl_ns, .min = 1 * SEC,
	       .max = 30 * 86400 * SEC),
	SCALAR("response.endpoints", set_choice, response.endpoints, .choices = endpoint_modes),
	SECTION("response.detectors"),
	SCALAR("response.detectors.scan", set_choice, response.detectors[ZT_DET_SCAN],
	       .choices = response_modes),
	SCALAR("response.detectors.flood", set_choice, response.detectors[ZT_DET_FLOOD],
	       .choices = response_modes),
	SCALAR("response.detectors.bruteforce", set_choice, response.detectors[ZT_DET_BRUTEFORCE],
	       .choices = response_modes),
	SCALAR("response.detectors.slowconn", set_choice, response.detectors[ZT_DET_SLOWCONN],
	       .choices = response_modes),
	SCALAR("response.detectors.exfiltration", set_choice,
	       response.detectors[ZT_DET_EXFILTRATION], .choices = response_modes),
	SCALAR("response.detectors.model", set_choice, response.detectors[ZT_DET_MODEL],
	       .choices = response_modes),
	SCALAR("response.incident_update", set_duration, response.incident_update_ns,
	       .min = 100 * MS, .max = 3600 * SEC),
	SCALAR("response.incident_idle", set_duration, response.incident_idle_ns, .min = 1 * SEC,
	       .max = 7 * 86400 * SEC),
	SCALAR("response.denial_window", set_duration, response.denial_window_ns, .min = 100 * MS,
	       .max = 3600 * SEC),

	SECTION("forensics"),
	SCALAR("forensics.dir", set_dir, forensics.dir),
	SCALAR("forensics.max_bytes", set_size, forensics.max_bytes, .min = 1u << 20,
	       .max = 1ULL << 50),
	SCALAR("forensics.file_bytes", set_size, forensics.file_bytes, .min = 64u << 10,
	       .max = 1ULL << 40),
	SCALAR("forensics.max_files", set_uint, forensics.max_files, .min = 1, .max = 1000000),
	SCALAR("forensics.snaplen", set_uint, forensics.snaplen, .min = 64, .max = 65535),
	SCALAR("forensics.rate", set_uint, forensics.rate, .min = 1, .max = 10000000),

	SECTION("ratelimit"),
	SCALAR("ratelimit.all", set_uint, ratelimit.src[0], .min = 0, .max = 100000000),
	SCALAR("ratelimit.syn", set_uint, ratelimit.src[1], .min = 0, .max = 100000000),
	SCALAR("ratelimit.udp", set_uint, ratelimit.src[2], .min = 0, .max = 100000000),
	SCALAR("ratelimit.icmp", set_uint, ratelimit.src[3], .min = 0, .max = 100000000),
	SCALAR("ratelimit.dst_all", set_uint, ratelimit.dst[0], .min = 0, .max = 100000000),
	SCALAR("ratelimit.dst_syn", set_uint, ratelimit.dst[1], .min = 0, .max = 100000000),
	SCALAR("ratelimit.dst_udp", set_uint, ratelimit.dst[2], .min = 0, .max = 100000000),
	SCALAR("ratelimit.dst_icmp", set_uint, ratelimit.dst[3], .min = 0, .max = 100000000),
	SECTION("drift"),
	SCALAR("drift.cni_conflist", set_text, drift.cni_conflist),
	SCALAR("drift.blocklist_cpu", set_fraction, drift.blocklist_cpu_ppm, .max = 1000000),
};
#undef FEED
#undef FIELD
#undef SECTION
#undef SCALAR
#undef LIST

_Static_assert(ZT_ARRAY_SIZE(keys) <= ZT_ARRAY_SIZE(((struct pctx *)0)->seen),
	       "pctx.seen is too small for keys[]");

void zt_config_defaults(struct zt_config *c)
{
	memset(c, 0, sizeof(*c));
	if (gethostname(c->node, sizeof(c->node)) < 0)
		c->node[0] = '\0';
	c->node[sizeof(c->node) - 1] = '\0';
	/* The hostname becomes the node name: keep it within what a file may say. */
	for (char *p = c->node; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-'))
			*p = '-';
	if (!c->node[0])
		snprintf(c->node, sizeof(c->node), "localhost");
	snprintf(c->bpffs, sizeof(c->bpffs), "%s", ZT_DEFAULT_BPFFS);
	snprintf(c->api_socket, sizeof(c->api_socket), "%s", ZT_DEFAULT_API_SOCKET);
	c->log_level = ZT_LOG_INFO;
	c->xdp.mode = ZT_XDP_AUTO;
	c->xdp.malformed_drop = true;
	c->xdp.blocklist_max = 2097152;
	c->xdp.allowlist_max = 65536;
	c->xdp.event_sample = ZT_DEFAULT_EVENT_SAMPLE;
	c->xdp.event_rate = ZT_DEFAULT_EVENT_RATE;
	c->xdp.ringbuf_bytes = 4u << 20;
	c->xdp.expiry_interval_ns = 1 * SEC;
	snprintf(c->state_dir, sizeof(c->state_dir), "%s", ZT_DEFAULT_STATE_DIR);
	snprintf(c->policy.dir, sizeof(c->policy.dir), "%s", ZT_DEFAULT_POLICY_DIR);
	c->policy.default_deny = true;
	c->policy.conntrack_max = 262144;
	snprintf(c->database.spool_dir, sizeof(c->database.spool_dir), "%s", ZT_DEFAULT_SPOOL_DIR);
	c->database.spool_max_bytes = 1ULL << 30;
	c->database.retention_months = 12;
	c->flows.active_timeout_ns = 60 * SEC;
	snprintf(c->metrics.listen, sizeof(c->metrics.listen), "%s", ZT_DEFAULT_METRICS_LISTEN);
	c->mtls.mode = ZT_MTLS_MODE_POLICY;
	snprintf(c->mtls.trust_domain, sizeof(c->mtls.trust_domain), "%s", ZT_DEFAULT_TRUST_DOMAIN);
	snprintf(c->mtls.ca_bundle, sizeof(c->mtls.ca_bundle), "%s", ZT_DEFAULT_CA_BUNDLE);
	snprintf(c->mtls.node_cert, sizeof(c->mtls.node_cert), "%s", ZT_DEFAULT_NODE_CERT);
	snprintf(c->mtls.node_key, sizeof(c->mtls.node_key), "%s", ZT_DEFAULT_NODE_KEY);
	c->mtls.svid_ttl_ns = 3600 * SEC;
	c->mtls.port = ZT_DEFAULT_MTLS_PORT;
	c->detection.target_fpr_ppm = 1000;
	c->detection.realtime_priority = 1;
	c->drift.blocklist_cpu_ppm = 100000;
	c->detection.sweep_interval_ns = 1 * SEC;
	c->detection.scan.theta0_ppm = 800000;
	c->detection.scan.theta1_ppm = 200000;
	c->detection.scan.alpha_ppm = 10000;
	c->detection.scan.beta_ppm = 990000;
	c->detection.scan.probe_timeout_ns = 2 * SEC;
	c->detection.scan.max_sources = 65536;
	c->detection.scan.brake = 6;
	c->detection.flood.window_ns = 100 * MS;
	c->detection.flood.dst_factor = 10;
	c->detection.flood.out_of_state = 5000;
	c->detection.bruteforce.min_attempts = 10;
	c->detection.bruteforce.window_ns = 60 * SEC;
	c->detection.bruteforce.refused_window_ns = 600 * SEC;
	c->detection.bruteforce.max_duration_ns = 10 * SEC;
	c->detection.slowconn.min_conns = 16;
	c->detection.slowconn.min_age_ns = 3 * SEC;
	c->detection.slowconn.max_rate = 256;
	c->detection.exfiltration.interval_ns = 60 * SEC;
	c->detection.exfiltration.min_bytes = 8ULL << 20;
	c->detection.exfiltration.new_dest_bytes = 32ULL << 20;
	c->detection.exfiltration.warmup = 10;
	c->response.mode = ZT_RESPONSE_BLOCK;
	for (int i = 0; i < ZT_DET_COUNT; i++)
		c->response.detectors[i] = ZT_RESPONSE_BLOCK;
	c->response.detectors[ZT_DET_EXFILTRATION] = ZT_RESPONSE_ALERT;
	c->response.detectors[ZT_DET_MODEL] = ZT_RESPONSE_ALERT;
	c->response.endpoints = ZT_RESPONSE_ALERT;
	c->response.block_ttl_ns = 600 * SEC;
	c->response.max_ttl_ns = 86400 * SEC;
	c->response.incident_update_ns = 5 * SEC;
	c->response.incident_idle_ns = 600 * SEC;
	c->response.denial_window_ns = 10 * SEC;
	snprintf(c->forensics.dir, sizeof(c->forensics.dir), "%s/pcap", ZT_DEFAULT_STATE_DIR);
	c->forensics.max_bytes = 1ULL << 30;
	c->forensics.file_bytes = 64ULL << 20;
	c->forensics.max_files = 1000;
	c->forensics.snaplen = 256;
	c->forensics.rate = 2000;
	/* The issue's contract: per source, in XDP, from the first second. */
	c->ratelimit.src[ZT_RL_SYN] = 2000;
	c->ratelimit.src[ZT_RL_UDP] = 20000;
	c->ratelimit.src[ZT_RL_ICMP] = 500;
	c->kubernetes.enabled = false;
	c->kubernetes.pending_posture = ZT_PENDING_DENY;
}

const char *zt_xdp_mode_name(enum zt_xdp_mode m)
{
	return (size_t)m < ZT_ARRAY_SIZE(xdp_modes) - 1 ? xdp_modes[m].name : "?";
}

const char *zt_pending_posture_name(enum zt_pending_posture p)
{
	return (size_t)p < ZT_ARRAY_SIZE(pending_postures) - 1 ? pending_postures[p].name : "?";
}

void zt_feed_config_defaults(struct zt_feed_config *f)
{
	memset(f, 0, sizeof(*f));
	f->format = ZT_FEED_CIDR;
	f->direction = ZT_FEED_SOURCE;
	f->action = ZT_FEED_BLOCK;
	f->refresh_ns = 3600 * SEC;
	f->timeout_ns = 30 * SEC;
	f->max_bytes = 256ULL << 20;
	f->max_entries = 1000000;
	f->max_bad_ppm = 10000;
	f->retries = 3;
}

static void feed_init(void *item)
{
	zt_feed_config_defaults(item);
}

const char *zt_feed_format_name(enum zt_feed_format f)
{
	return (unsigned int)f < ZT_FEED_FORMAT_COUNT ? feed_formats[f].name : "?";
}

static void vreport(struct pctx *x, size_t line, size_t col, const char *fmt, va_list ap)
{
	int n;

	n = snprintf(x->err, x->errlen, "%s:%zu:%zu: ", x->name, line, col);
	if (n < 0 || (size_t)n >= x->errlen)
		return;
	vsnprintf(x->err + n, x->errlen - (size_t)n, fmt, ap);
}

/* Writes "name:line:col: <message>" (libyaml marks are 0-based) and returns r. */
static int fail(struct pctx *x, const yaml_mark_t *m, int r, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fail(struct pctx *x, const yaml_mark_t *m, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(x, m->line + 1, m->column + 1, fmt, ap);
	va_end(ap);
	return r;
}

/* Same, at a byte offset into the input (reader errors carry no mark). */
static int fail_at(struct pctx *x, size_t off, int r, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fail_at(struct pctx *x, size_t off, int r, const char *fmt, ...)
{
	size_t line = 1, col = 1;
	va_list ap;

	for (size_t i = 0; i < off && i < x->len; i++) {
		if (x->buf[i] == '\n') {
			line++;
			col = 1;
		} else {
			col++;
		}
	}
	va_start(ap, fmt);
	vreport(x, line, col, fmt, ap);
	va_end(ap);
	return r;
}

/* What a node is, for "expected X, got Y". */
static const char *describe(const yaml_event_t *ev, char *buf, size_t n)
{
	char q[SHOW_MAX * 4 + 8];

	switch (ev->type) {
	case YAML_MAPPING_START_EVENT:
		return "a mapping";
	case YAML_SEQUENCE_START_EVENT:
		return "a list";
	case YAML_SCALAR_EVENT:
		if (!ev->data.scalar.length && ev->data.scalar.plain_implicit)
			return "nothing";
		snprintf(buf, n, "'%s'",
			 zt_shown((const char *)ev->data.scalar.value, SHOW_MAX, q, sizeof(q)));
		return buf;
	default:
		return "something else";
	}
}

static int syntax_error(struct pctx *x)
{
	yaml_parser_t *p = &x->parser;
	const char *problem = p->problem ? p->problem : "unknown problem";

	switch (p->error) {
	case YAML_MEMORY_ERROR:
		snprintf(x->err, x->errlen, "%s: out of memory while parsing", x->name);
		return -ENOMEM;
	case YAML_READER_ERROR:
		if (p->problem_value >= 0)
			return fail_at(x, p->problem_offset, -EINVAL,
				       "YAML syntax error: %s (0x%x); the file must be UTF-8 text",
				       problem, (unsigned int)p->problem_value);
		return fail_at(x, p->problem_offset, -EINVAL,
			       "YAML syntax error: %s; the file must be UTF-8 text", problem);
	default:
		if (p->context)
			return fail(x, &p->problem_mark, -EINVAL,
				    "YAML syntax error: %s (%s at line %zu column %zu)", problem,
				    p->context, p->context_mark.line + 1,
				    p->context_mark.column + 1);
		return fail(x, &p->problem_mark, -EINVAL, "YAML syntax error: %s", problem);
	}
}

/* The next event, refusing what the configuration never needs: aliases, anchors, tags. */
static int next(struct pctx *x, yaml_event_t *ev)
{
	const yaml_char_t *anchor = NULL, *tag = NULL, *nul;
	int r;

	if (!yaml_parser_parse(&x->parser, ev))
		return syntax_error(x);
	switch (ev->type) {
	case YAML_ALIAS_EVENT:
		r = fail(
			x, &ev->start_mark, -EINVAL,
			"aliases (*name) are not allowed in the configuration; write the value out");
		yaml_event_delete(ev);
		return r;
	case YAML_SCALAR_EVENT:
		/*
		 * A "\0" escape in a quoted scalar is a NUL inside the value: every
		 * setter reads a C string and would keep what comes before it
		 * ("web\0-evil" would be "web"). Refused, as the policy parser does.
		 */
		nul = ev->data.scalar.length ?
			      memchr(ev->data.scalar.value, '\0', ev->data.scalar.length) :
			      NULL;
		if (nul) {
			r = fail(
				x, &ev->start_mark, -EINVAL,
				"a NUL byte (\\0) at byte %zu of a value; values are text without NUL",
				(size_t)(nul - ev->data.scalar.value));
			yaml_event_delete(ev);
			return r;
		}
		anchor = ev->data.scalar.anchor;
		tag = ev->data.scalar.tag;
		break;
	case YAML_SEQUENCE_START_EVENT:
		anchor = ev->data.sequence_start.anchor;
		tag = ev->data.sequence_start.tag;
		break;
	case YAML_MAPPING_START_EVENT:
		anchor = ev->data.mapping_start.anchor;
		tag = ev->data.mapping_start.tag;
		break;
	default:
		break;
	}
	if (anchor) {
		r = fail(x, &ev->start_mark, -EINVAL,
			 "anchors (&name) are not allowed in the configuration");
		yaml_event_delete(ev);
		return r;
	}
	if (tag) {
		char q[SHOW_MAX * 4 + 8];

		r = fail(x, &ev->start_mark, -EINVAL,
			 "tags ('%s') are not allowed in the configuration; write the plain value",
			 zt_shown((const char *)tag, SHOW_MAX, q, sizeof(q)));
		yaml_event_delete(ev);
		return r;
	}
	return 0;
}

static void *field(struct pctx *x, const struct key *k)
{
	if (k->in_item)
		return (char *)x->item_base + k->off;
	return (char *)x->c + k->off;
}

static void store_uint(void *dst, size_t size, uint64_t v)
{
	switch (size) {
	case 1:
		*(uint8_t *)dst = (uint8_t)v;
		break;
	case 2:
		*(uint16_t *)dst = (uint16_t)v;
		break;
	case 4:
		*(uint32_t *)dst = (uint32_t)v;
		break;
	default:
		*(uint64_t *)dst = v;
		break;
	}
}

static bool is_name_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '.' || ch == '_' || ch == '-';
}

static int set_node(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m)
{
	char q[SHOW_MAX * 4 + 8];
	size_t n = strlen(v);
	bool ok = n > 0 && n < k->size;

	for (const char *p = v; ok && *p; p++)
		ok = is_name_char(*p);
	if (!ok)
		return fail(
			x, m, -EINVAL,
			"%s: expected a name of 1 to %zu letters, digits, '.', '_' or '-', got '%s'",
			k->path, k->size - 1, zt_shown(v, SHOW_MAX, q, sizeof(q)));
	memcpy(field(x, k), v, n + 1);
	return 0;
}

/* An absolute path without control bytes, shorter than max. */
static bool valid_path(const char *v, size_t max)
{
	size_t n = strlen(v);

	if (v[0] != '/' || n > max)
		return false;
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

static int set_dir(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m)
{
	char q[SHOW_MAX * 4 + 8], *dst = field(x, k);
	size_t n;

	if (!valid_path(v, k->size - 1))
		return fail(
			x, m, -EINVAL,
			"%s: expected an absolute directory path of at most %zu bytes, got '%s'",
			k->path, k->size - 1, zt_shown(v, SHOW_MAX, q, sizeof(q)));
	/* No trailing slash: names are joined to it. */
	n = strlen(v);
	while (n > 1 && v[n - 1] == '/')
		n--;
	memcpy(dst, v, n);
	dst[n] = '\0';
	return 0;
}

static int set_sock(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m)
{
	char q[SHOW_MAX * 4 + 8];
	size_t n = strlen(v);

	if (!valid_path(v, SUN_PATH_MAX) || v[n - 1] == '/')
		return fail(
			x, m, -EINVAL,
			"%s: expected an absolute socket path of at most %zu bytes (not ending in '/'), got '%s'",
			k->path, SUN_PATH_MAX, zt_shown(v, SHOW_MAX, q, sizeof(q)));
	memcpy(field(x, k), v, n + 1);
	return 0;
}

static int set_choice(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m)
{
	char want[128] = "", q[SHOW_MAX * 4 + 8];
	size_t n = 0, o = 0;

	for (const struct choice *ch = k->choices; ch->name; ch++, n++)
		if (!strcmp(v, ch->name)) {
			store_uint(field(x, k), k->size, ch->value);
			return 0;
		}
	/* "a, b or c" */
	for (size_t i = 0; i < n && o < sizeof(want); i++) {
		const char *sep = i == 0 ? "" : i == n - 1 ? " or " : ", ";
		int r = snprintf(want + o, sizeof(want) - o, "%s%s", sep, k->choices[i].name);

		if (r < 0)
			break;
		o += (size_t)r;
	}
	return fail(x, m, -EINVAL, "%s: expected %s, got '%s'", k->path, want,
		    zt_shown(v, SHOW_MAX, q, sizeof(q)));
}

static int set_uint(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m)
{
	char q[SHOW_MAX * 4 + 8];
	uint64_t u;
	int r = zt_parse_u64(v, &u);

	if (r < 0 || u < k->min || u > k->max)
		return fail(x, m, r == -EINVAL ? -EINVAL : -ERANGE,
			    "%s: expected a whole number from %llu to %llu, got '%s'", k->path,
			    (unsigned long long)k->min, (unsigned long long)k->max,
			    zt_shown(v, SHOW_MAX, q, sizeof(q)));
	store_uint(field(x, k), k->size, u);
	return 0;
}

/* 4096 -> "4KiB": the exact binary unit, for messages. */
static const char *size_str(uint64_t v, char *buf, size_t n)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	size_t i = 0;

	while (i + 1 < ZT_ARRAY_SIZE(units) && v >= 1024 && v % 1024 == 0) {
		v /= 1024;
		i++;
	}
	snprintf(buf, n, "%llu%s", (unsigned long long)v, units[i]);
	return buf;
}

static int set_size_pow2(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m)
{
	char q[SHOW_MAX * 4 + 8], lo[32], hi[32];
	uint64_t u;
	int r = zt_size_parse(v, &u);

	if (r < 0 || u < k->min || u > k->max || (u & (u - 1)))
		return fail(
			x, m, r == -EINVAL ? -EINVAL : -ERANGE,
			"%s: expected a power of two from %s to %s (like 4MiB or 1048576), got '%s'",
			k->path, size_str(k->min, lo, sizeof(lo)), size_str(k->max, hi, sizeof(hi)),
			zt_shown(v, SHOW_MAX, q, sizeof(q)));
	store_uint(field(x, k), k->size, u);
	return 0;
}

static int set_duration(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m)
{
	char q[SHOW_MAX * 4 + 8], lo[32], hi[32];
	uint64_t ns;
	int r = zt_duration_parse(v, &ns);

	if (r < 0 || ns < k->min || ns > k->max) {
		zt_duration_format(k->min, lo, sizeof(lo));
		zt_duration_format(k->max, hi, sizeof(hi));
		return fail(
			x, m, r == -EINVAL ? -EINVAL : -ERANGE,
			"%s: expected a duration from %s to %s (like 500ms, 2s or 1m30s), got '%s'",
			k->path, lo, hi, zt_shown(v, SHOW_MAX, q, sizeof(q)));
	}
	store_uint(field(x, k), k->size, ns);
	return 0;
}

static int set_size(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m)
{
	char q[SHOW_MAX * 4 + 8], lo[32], hi[32];
	uint64_t u;
	int r = zt_size_parse(v, &u);

	if (r < 0 || u < k->min || u > k->max)
		return fail(
			x, m, r == -EINVAL ? -EINVAL : -ERANGE,
			"%s: expected a size from %s to %s (like 512MiB, 1GiB or 1073741824), got '%s'",
			k->path, size_str(k->min, lo, sizeof(lo)), size_str(k->max, hi, sizeof(hi)),
			zt_shown(v, SHOW_MAX, q, sizeof(q)));
	store_uint(field(x, k), k->size, u);
	return 0;
}

/* Free text (a connection string): printable ASCII, no newlines, fits the field. */
static int set_text(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m)
{
	char q[SHOW_MAX * 4 + 8];
	size_t n = strlen(v);

	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return fail(x, m, -EINVAL, "%s: control character at byte %zu in '%s'",
				    k->path, (size_t)(p - (const unsigned char *)v),
				    zt_shown(v, SHOW_MAX, q, sizeof(q)));
	if (n >= k->size)
		return fail(x, m, -ERANGE, "%s: longer than %zu bytes", k->path, k->size - 1);
	memcpy(field(x, k), v, n + 1);
	return 0;
}

/* "ADDR:PORT" with a numeric IPv4 address, "[V6]:PORT", or "" (off). */
static int set_listen(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m)
{
	char q[SHOW_MAX * 4 + 8];
	struct sockaddr_storage ss;

	if (*v && zt_listen_parse(v, &ss) < 0)
		return fail(
			x, m, -EINVAL,
			"%s: expected ADDRESS:PORT (like 127.0.0.1:9470 or [::1]:9470, port 1-65535) or \"\" to turn it off, got '%s'",
			k->path, zt_shown(v, SHOW_MAX, q, sizeof(q)));
	if (strlen(v) >= k->size)
		return fail(x, m, -ERANGE, "%s: longer than %zu bytes", k->path, k->size - 1);
	memcpy(field(x, k), v, strlen(v) + 1);
	return 0;
}

/*
 * A feed's name is in logs, metrics labels and a file name under state_dir:
 * letters, digits, '.', '_', '-', starting with a letter or a digit.
 */
static int set_feed_name(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m)
{
	char q[SHOW_MAX * 4 + 8];
	size_t n = strlen(v);
	bool ok = n > 0 && n < k->size && is_name_char(v[0]) && v[0] != '.' && v[0] != '-' &&
		  v[0] != '_';

	for (const char *p = v; ok && *p; p++)
		ok = is_name_char(*p);
	if (!ok)
		return fail(
			x, m, -EINVAL,
			"%s: expected a name of 1 to %zu letters, digits, '.', '_' or '-' starting with a letter or digit, got '%s'",
			k->path, k->size - 1, zt_shown(v, SHOW_MAX, q, sizeof(q)));
	memcpy(field(x, k), v, n + 1);
	return 0;
}

/*
 * https://HOST[:PORT]/..., http://..., file:///PATH, or /PATH. Printable
 * ASCII without blanks (a URL percent-encodes the rest). No "user:pass@":
 * the URL is shown in logs, status and metrics, where a secret must not be.
 */
static int set_feed_url(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m)
{
	char q[SHOW_MAX * 4 + 8];
	const char *host = NULL;
	size_t n = strlen(v);

	if (n >= k->size)
		return fail(x, m, -ERANGE, "%s: longer than %zu bytes", k->path, k->size - 1);
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if (*p <= 0x20 || *p >= 0x7f)
			return fail(
				x, m, -EINVAL,
				"%s: byte 0x%02x at offset %zu in '%s'; percent-encode it (a URL is printable ASCII without blanks)",
				k->path, *p, (size_t)(p - (const unsigned char *)v),
				zt_shown(v, SHOW_MAX, q, sizeof(q)));
	if (!strncmp(v, "https://", 8))
		host = v + 8;
	else if (!strncmp(v, "http://", 7))
		host = v + 7;
	if (host) {
		size_t hl = strcspn(host, "/?#");

		if (hl == 0 || host[0] == ':')
			return fail(x, m, -EINVAL, "%s: no host name in '%s'", k->path,
				    zt_shown(v, SHOW_MAX, q, sizeof(q)));
		if (memchr(host, '@', hl))
			return fail(
				x, m, -EINVAL,
				"%s: credentials ('user:password@') in a URL are not supported: the URL is shown in logs and status",
				k->path);
	} else if (!(!strncmp(v, "file:///", 8) || (v[0] == '/'))) {
		return fail(
			x, m, -EINVAL,
			"%s: expected an https://, http:// or file:/// URL, or an absolute path to a file or a directory, got '%s'",
			k->path, zt_shown(v, SHOW_MAX, q, sizeof(q)));
	}
	memcpy(field(x, k), v, n + 1);
	return 0;
}

/* An absolute path to a file: not ending in '/', no control bytes. */
static int set_file(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m)
{
	char q[SHOW_MAX * 4 + 8];
	size_t n = strlen(v);

	if (!valid_path(v, k->size - 1) || v[n - 1] == '/')
		return fail(
			x, m, -EINVAL,
			"%s: expected an absolute file path of at most %zu bytes (not ending in '/'), got '%s'",
			k->path, k->size - 1, zt_shown(v, SHOW_MAX, q, sizeof(q)));
	memcpy(field(x, k), v, n + 1);
	return 0;
}

/* "" (not set) or an absolute file path. */
static int set_opt_file(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m)
{
	if (!*v) {
		*(char *)field(x, k) = '\0';
		return 0;
	}
	return set_file(x, k, v, m);
}

/*
 * A Kubernetes object name (RFC 1123 subdomain): 1-253 of lowercase
 * letters, digits, '-' and '.', alphanumeric at both ends of every label.
 */
static bool k8s_name_valid(const char *v)
{
	size_t n = strlen(v), lab = 0;

	if (n == 0 || n > ZT_K8S_NODE_NAME_MAX - 1)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = v[i];
		bool an = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');

		if (c == '.') {
			if (lab == 0 || v[i - 1] == '-')
				return false;
			lab = 0;
			continue;
		}
		if (!an && (c != '-' || lab == 0))
			return false;
		if (++lab > 63)
			return false;
	}
	return v[n - 1] != '-' && v[n - 1] != '.';
}

static int set_k8s_name(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m)
{
	char q[SHOW_MAX * 4 + 8];

	if (*v && !k8s_name_valid(v))
		return fail(
			x, m, -EINVAL,
			"%s: expected \"\" or a Kubernetes node name (1-253 of a-z 0-9 '-' '.', as 'kubectl get nodes' shows it), got '%s'",
			k->path, zt_shown(v, SHOW_MAX, q, sizeof(q)));
	memcpy(field(x, k), v, strlen(v) + 1);
	return 0;
}

int zt_config_k8s_node(const struct zt_config *c, char *buf, size_t n)
{
	const char *env = getenv("NODE_NAME");
	char host[256];

	if (c->kubernetes.node_name[0])
		return snprintf(buf, n, "%s", c->kubernetes.node_name) < (int)n ? 0 : -ENAMETOOLONG;
	if (env && k8s_name_valid(env))
		return snprintf(buf, n, "%s", env) < (int)n ? 0 : -ENAMETOOLONG;
	if (gethostname(host, sizeof(host)) < 0)
		return -errno;
	host[sizeof(host) - 1] = '\0';
	if (!k8s_name_valid(host))
		return -EINVAL;
	return snprintf(buf, n, "%s", host) < (int)n ? 0 : -ENAMETOOLONG;
}

/* A SPIFFE trust domain: 1 to 255 of lowercase letters, digits, '.', '-', '_'. */
static int set_trust_domain(struct pctx *x, const struct key *k, const char *v,
			    const yaml_mark_t *m)
{
	char q[SHOW_MAX * 4 + 8];
	size_t n = strlen(v);
	bool ok = n > 0 && n < k->size;

	for (const char *p = v; ok && *p; p++)
		ok = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '.' ||
		     *p == '-' || *p == '_';
	if (!ok)
		return fail(
			x, m, -EINVAL,
			"%s: expected a SPIFFE trust domain of 1 to %zu lowercase letters, digits, '.', '-' or '_' (like cluster.local), got '%s'",
			k->path, k->size - 1, zt_shown(v, SHOW_MAX, q, sizeof(q)));
	memcpy(field(x, k), v, n + 1);
	return 0;
}

/*
 * A fraction from 0 to 1: "0.05", "5%", "0.5%", "1", "0". At most 6 digits
 * after the point of the fraction (it is kept in parts per million).
 */
static int set_fraction(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m)
{
	char q[SHOW_MAX * 4 + 8];
	uint64_t whole = 0, frac = 0, scale = 1000000;
	size_t n = strlen(v), i = 0, digits = 0, fdigits = 0;
	bool pct = n > 0 && v[n - 1] == '%';
	uint64_t ppm;

	if (pct)
		n--;
	for (; i < n && v[i] >= '0' && v[i] <= '9' && digits < 7; i++, digits++)
		whole = whole * 10 + (uint64_t)(v[i] - '0');
	if (i < n && v[i] == '.') {
		for (i++; i < n && v[i] >= '0' && v[i] <= '9'; i++) {
			if (++fdigits > 6) {
				digits = 0;
				break;
			}
			scale /= 10;
			frac += (uint64_t)(v[i] - '0') * scale;
		}
		if (fdigits == 0)
			digits = 0;
	}
	/* frac is already in millionths; a percentage is 100 times smaller. */
	ppm = whole * 1000000 + frac;
	if (pct)
		ppm /= 100;
	if (i != n || digits == 0 || ppm > k->max || (pct && (whole * 1000000 + frac) % 100))
		return fail(
			x, m, -EINVAL,
			"%s: expected a fraction from 0 to 1 (like 0.01 or 1%%, at most millionths), got '%s'",
			k->path, zt_shown(v, SHOW_MAX, q, sizeof(q)));
	store_uint(field(x, k), k->size, ppm);
	return 0;
}

static const struct key *row(const char *path)
{
	for (size_t i = 0; i < ZT_ARRAY_SIZE(keys); i++)
		if (!strcmp(keys[i].path, path))
			return &keys[i];
	return NULL;
}

/* Where key path was set in the current item, or NULL when it was not. */
static yaml_mark_t *item_seen(struct pctx *x, const char *path, yaml_mark_t *out)
{
	const struct key *r = row(path);
	const yaml_mark_t *s = r ? &x->seen[r - keys] : NULL;

	if (!s || !s->line)
		return NULL;
	/* seen[] is 1-based; fail() wants libyaml's 0-based marks. */
	*out = (yaml_mark_t){ .line = s->line - 1, .column = s->column - 1 };
	return out;
}

/*
 * Captures live under state_dir unless forensics.dir says otherwise, so an
 * agent given its own state_dir (a second agent, a test) keeps its pcaps
 * there too, not in another agent's /var/lib/ztagent/pcap.
 */
static int default_forensics_dir(struct pctx *x)
{
	struct zt_config *c = x->c;
	yaml_mark_t at;

	if (item_seen(x, "forensics.dir", &at))
		return 0;
	if (strlen(c->state_dir) + sizeof("/pcap") > sizeof(c->forensics.dir)) {
		snprintf(x->err, x->errlen,
			 "%s: state_dir is too long to hold forensics.dir (state_dir/pcap); set "
			 "forensics.dir",
			 x->name);
		return -ENAMETOOLONG;
	}
	snprintf(c->forensics.dir, sizeof(c->forensics.dir), "%s/pcap", c->state_dir);
	return 0;
}

/* One feed is complete: required keys, keys that go together, a unique name. */
static int check_feed(struct pctx *x, const struct key *k, const yaml_mark_t *m)
{
	static const char *const required[][2] = {
		{ "feeds.name", "name (how logs, metrics and ztctl call it)" },
		{ "feeds.url", "url (where it is fetched from)" },
		{ "feeds.format",
		  "format (cidr, firehol, spamhaus-json, feodo-csv, stix2, misp or policy)" },
	};
	const struct zt_feed_config *f = x->item_base;
	char q[SHOW_MAX * 4 + 8];
	yaml_mark_t at;

	for (size_t i = 0; i < ZT_ARRAY_SIZE(required); i++)
		if (!item_seen(x, required[i][0], &at))
			return fail(x, m, -EINVAL, "%s: this feed has no %s; it is required",
				    k->path, required[i][1]);
	if (f->ca_bundle[0] && strncmp(f->url, "https://", 8) &&
	    item_seen(x, "feeds.ca_bundle", &at))
		return fail(
			x, &at, -EINVAL,
			"feeds.ca_bundle: only an https:// feed verifies a certificate; '%s' is not one",
			f->name);
	if (f->format == ZT_FEED_POLICY) {
		if (item_seen(x, "feeds.direction", &at))
			return fail(
				x, &at, -EINVAL,
				"feeds.direction: feed '%s' has format policy: it carries policies, not addresses; remove direction",
				f->name);
		if (item_seen(x, "feeds.action", &at))
			return fail(
				x, &at, -EINVAL,
				"feeds.action: feed '%s' has format policy: it carries policies, not addresses; remove action",
				f->name);
	}
	for (unsigned int i = 0; i < x->item; i++) {
		const struct zt_feed_config *o = &x->c->feeds[i];

		if (!strcmp(o->name, f->name)) {
			item_seen(x, "feeds.name", &at);
			return fail(
				x, &at, -EINVAL,
				"feeds.name: '%s' names two feeds; each feed needs its own name",
				zt_shown(f->name, SHOW_MAX, q, sizeof(q)));
		}
	}
	return 0;
}

/* detection.protected: a list of CIDRs; the file's list replaces the default (none). */
static int add_protected(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m)
{
	struct zt_config *c = x->c;
	char q[SHOW_MAX * 4 + 8];
	bool host_bits = false;

	if (x->item == 0)
		c->detection.n_protected = 0;
	if (!v)
		return 0;
	if (c->detection.n_protected >= k->max)
		return fail(x, m, -E2BIG, "%s: more than %llu prefixes", k->path,
			    (unsigned long long)k->max);
	if (zt_cidr_parse(v, &c->detection.protected_cidrs[c->detection.n_protected], &host_bits) <
	    0)
		return fail(x, m, -EINVAL,
			    "%s: expected an IPv4 or IPv6 address or prefix (like 10.96.0.0/12), "
			    "got '%s'",
			    k->path, zt_shown(v, SHOW_MAX, q, sizeof(q)));
	if (host_bits)
		return fail(x, m, -EINVAL,
			    "%s: '%s' has bits set past its prefix length; write the network "
			    "address",
			    k->path, zt_shown(v, SHOW_MAX, q, sizeof(q)));
	c->detection.n_protected++;
	return 0;
}

/* Keys that only make sense together, once the whole file is read. */
static int check_detection(struct pctx *x)
{
	const struct zt_config *c = x->c;
	yaml_mark_t at, zero = { 0 };

	if (c->detection.scan.theta1_ppm == 0 ||
	    c->detection.scan.theta1_ppm >= c->detection.scan.theta0_ppm)
		return fail(x, item_seen(x, "detection.scan.theta1", &at) ?: &zero, -EINVAL,
			    "detection.scan.theta1: a scanner's success probability (%.6g) must "
			    "be above 0 and below a benign source's, theta0 (%.6g)",
			    c->detection.scan.theta1_ppm / 1e6, c->detection.scan.theta0_ppm / 1e6);
	if (c->detection.scan.alpha_ppm == 0 ||
	    c->detection.scan.alpha_ppm >= c->detection.scan.beta_ppm)
		return fail(x, item_seen(x, "detection.scan.alpha", &at) ?: &zero, -EINVAL,
			    "detection.scan.alpha: the false-positive probability (%.6g) must be "
			    "above 0 and below the detection probability beta (%.6g)",
			    c->detection.scan.alpha_ppm / 1e6, c->detection.scan.beta_ppm / 1e6);
	if (c->detection.target_fpr_ppm == 0)
		return fail(x, item_seen(x, "detection.target_fpr", &at) ?: &zero, -EINVAL,
			    "detection.target_fpr: must be above 0 (like 0.001)");
	if (c->response.max_ttl_ns < c->response.block_ttl_ns)
		return fail(x, item_seen(x, "response.max_ttl", &at) ?: &zero, -EINVAL,
			    "response.max_ttl: shorter than response.block_ttl; the doubling "
			    "needs room (default 24h)");
	if (c->forensics.file_bytes > c->forensics.max_bytes)
		return fail(x, item_seen(x, "forensics.file_bytes", &at) ?: &zero, -EINVAL,
			    "forensics.file_bytes: larger than forensics.max_bytes; one file "
			    "would not fit the bound");
	return 0;
}

static int add_iface(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m)
{
	struct zt_config *c = x->c;
	char q[SHOW_MAX * 4 + 8];

	if (x->item == 0)
		c->xdp.n_interfaces = 0; /* the file's list replaces the default */
	if (!v)
		return 0;
	if (!zt_ifname_valid(v))
		return fail(
			x, m, -EINVAL,
			"%s: expected an interface name of 1 to %d printable characters without '/', ':' or spaces, got '%s'",
			k->path, IF_NAMESIZE - 1, zt_shown(v, SHOW_MAX, q, sizeof(q)));
	for (unsigned int i = 0; i < c->xdp.n_interfaces; i++)
		if (!strcmp(c->xdp.interfaces[i], v))
			return fail(x, m, -EINVAL, "%s: '%s' is listed twice", k->path,
				    zt_shown(v, SHOW_MAX, q, sizeof(q)));
	if (c->xdp.n_interfaces >= k->max)
		return fail(x, m, -E2BIG, "%s: more than %llu interfaces", k->path,
			    (unsigned long long)k->max);
	memcpy(c->xdp.interfaces[c->xdp.n_interfaces++], v, strlen(v) + 1);
	return 0;
}

static const char *leaf(const char *path)
{
	const char *dot = strrchr(path, '.');

	return dot ? dot + 1 : path;
}

/* Optimal string alignment distance (edits + transpositions), capped at 3. */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t d[KEY_MAX + 1][KEY_MAX + 1];

	if (la > KEY_MAX || lb > KEY_MAX)
		return 3;
	for (size_t i = 0; i <= la; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++)
		for (size_t j = 1; j <= lb; j++) {
			size_t cost = a[i - 1] != b[j - 1];
			size_t best = d[i - 1][j - 1] + cost;

			if (d[i - 1][j] + 1 < best)
				best = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    d[i - 2][j - 2] + 1 < best)
				best = d[i - 2][j - 2] + 1;
			d[i][j] = best;
		}
	return d[la][lb] < 3 ? d[la][lb] : 3;
}

/* The row an operator probably meant: a near miss in this section, or the same name in another. */
static const struct key *suggest(const char *prefix, const char *name)
{
	size_t plen = prefix ? strlen(prefix) : 0, best = 3;
	const struct key *hit = NULL;

	for (size_t i = 0; i < ZT_ARRAY_SIZE(keys); i++) {
		const char *l = leaf(keys[i].path);
		bool same_section = (size_t)(l - keys[i].path) == (plen ? plen + 1 : 0) &&
				    (!plen || !strncmp(keys[i].path, prefix, plen));
		size_t dist;

		if (!same_section) {
			if (!strcmp(l, name))
				return &keys[i];
			continue;
		}
		dist = edit_distance(name, l);
		if (dist < best && dist < strlen(name)) {
			best = dist;
			hit = &keys[i];
		}
	}
	return hit;
}

static const struct key *find_key(const char *prefix, const char *name)
{
	size_t plen = prefix ? strlen(prefix) : 0;

	if (strchr(name, '.') || strlen(name) > KEY_MAX)
		return NULL;
	for (size_t i = 0; i < ZT_ARRAY_SIZE(keys); i++) {
		const char *p = keys[i].path;

		if (plen && (strncmp(p, prefix, plen) || p[plen] != '.'))
			continue;
		if (!strcmp(p + (plen ? plen + 1 : 0), name))
			return &keys[i];
	}
	return NULL;
}

static int unknown_key(struct pctx *x, const char *prefix, const yaml_event_t *ev)
{
	const char *name = (const char *)ev->data.scalar.value;
	const struct key *s = suggest(prefix, name);
	char q[SHOW_MAX * 4 + 8], full[KEY_MAX * 2 + 2];

	snprintf(full, sizeof(full), "%s%s%s", prefix ? prefix : "", prefix ? "." : "", name);
	for (size_t i = 0; strchr(name, '.') && i < ZT_ARRAY_SIZE(keys); i++)
		if (!strcmp(keys[i].path, full))
			return fail(
				x, &ev->start_mark, -EINVAL,
				"unknown key '%s' (dotted keys are not expanded: write '%s:' under '%.*s:')",
				zt_shown(full, SHOW_MAX, q, sizeof(q)), leaf(keys[i].path),
				(int)(leaf(keys[i].path) - keys[i].path - 1), keys[i].path);
	if (s)
		return fail(x, &ev->start_mark, -EINVAL, "unknown key '%s' (did you mean '%s'?)",
			    zt_shown(full, SHOW_MAX, q, sizeof(q)), s->path);
	return fail(x, &ev->start_mark, -EINVAL, "unknown key '%s'",
		    zt_shown(full, SHOW_MAX, q, sizeof(q)));
}

static int parse_list(struct pctx *x, const struct key *k)
{
	yaml_event_t ev;
	char d[SHOW_MAX * 4 + 8];
	int r;

	for (x->item = 0;; x->item++) {
		r = next(x, &ev);
		if (r < 0)
			return r;
		if (ev.type == YAML_SEQUENCE_END_EVENT) {
			if (x->item == 0)
				r = k->set(x, k, NULL, &ev.start_mark);
			yaml_event_delete(&ev);
			return r;
		}
		if (ev.type != YAML_SCALAR_EVENT)
			r = fail(x, &ev.start_mark, -EINVAL,
				 "%s: expected a list of values, got %s", k->path,
				 describe(&ev, d, sizeof(d)));
		else
			r = k->set(x, k, (const char *)ev.data.scalar.value, &ev.start_mark);
		yaml_event_delete(&ev);
		if (r < 0)
			return r;
	}
}

static int parse_mapping(struct pctx *x, const char *prefix);

/* A K_ITEMS list (its start event consumed): each item a mapping of the rows under k. */
static int parse_items(struct pctx *x, const struct key *k)
{
	unsigned int *count = (unsigned int *)((char *)x->c + k->count_off);
	size_t plen = strlen(k->path);
	char d[SHOW_MAX * 4 + 8];
	yaml_event_t ev;
	yaml_mark_t start;
	int r;

	*count = 0;
	for (;;) {
		r = next(x, &ev);
		if (r < 0)
			return r;
		if (ev.type == YAML_SEQUENCE_END_EVENT) {
			yaml_event_delete(&ev);
			return 0;
		}
		start = ev.start_mark;
		if (ev.type != YAML_MAPPING_START_EVENT)
			r = fail(
				x, &start, -EINVAL,
				"%s: expected a list of mappings (each item like '- name: x'), got %s",
				k->path, describe(&ev, d, sizeof(d)));
		else if (*count >= k->max)
			r = fail(x, &start, -E2BIG, "%s: more than %llu items", k->path,
				 (unsigned long long)k->max);
		yaml_event_delete(&ev);
		if (r < 0)
			return r;
		x->item = *count;
		x->item_base = (char *)x->c + k->off + (size_t)*count * k->stride;
		k->item_init(x->item_base);
		/* Duplicate keys are per item. */
		for (size_t i = 0; i < ZT_ARRAY_SIZE(keys); i++)
			if (!strncmp(keys[i].path, k->path, plen) && keys[i].path[plen] == '.')
				x->seen[i] = (yaml_mark_t){ 0 };
		r = parse_mapping(x, k->path);
		if (r == 0)
			r = k->item_check(x, k, &start);
		x->item_base = NULL;
		if (r < 0)
			return r;
		(*count)++;
	}
}

/* The value of key k, whose name event has been consumed. */
static int parse_value(struct pctx *x, const struct key *k)
{
	yaml_event_t ev;
	char d[SHOW_MAX * 4 + 8];
	int r;

	r = next(x, &ev);
	if (r < 0)
		return r;
	switch (k->kind) {
	case K_SECTION:
		if (ev.type == YAML_SCALAR_EVENT && !ev.data.scalar.length &&
		    ev.data.scalar.plain_implicit) {
			r = 0; /* "xdp:" with nothing under it: all defaults */
		} else if (ev.type == YAML_MAPPING_START_EVENT) {
			yaml_event_delete(&ev);
			return parse_mapping(x, k->path);
		} else {
			r = fail(x, &ev.start_mark, -EINVAL,
				 "%s: expected a mapping of keys (a section), got %s", k->path,
				 describe(&ev, d, sizeof(d)));
		}
		break;
	case K_LIST:
		if (ev.type == YAML_SEQUENCE_START_EVENT) {
			yaml_event_delete(&ev);
			return parse_list(x, k);
		}
		r = fail(x, &ev.start_mark, -EINVAL,
			 "%s: expected a list like [eth0, eth1] (or [] for none), got %s", k->path,
			 describe(&ev, d, sizeof(d)));
		break;
	case K_ITEMS:
		if (ev.type == YAML_SEQUENCE_START_EVENT) {
			yaml_event_delete(&ev);
			return parse_items(x, k);
		}
		if (ev.type == YAML_SCALAR_EVENT && !ev.data.scalar.length &&
		    ev.data.scalar.plain_implicit) {
			r = 0; /* "feeds:" with nothing under it: none */
			break;
		}
		r = fail(x, &ev.start_mark, -EINVAL,
			 "%s: expected a list of mappings (each item like '- name: x'), got %s",
			 k->path, describe(&ev, d, sizeof(d)));
		break;
	case K_SCALAR:
		if (ev.type == YAML_SCALAR_EVENT)
			r = k->set(x, k, (const char *)ev.data.scalar.value, &ev.start_mark);
		else
			r = fail(x, &ev.start_mark, -EINVAL, "%s: expected a single value, got %s",
				 k->path, describe(&ev, d, sizeof(d)));
		break;
	}
	yaml_event_delete(&ev);
	return r;
}

/* The keys of one mapping (its start event consumed) up to its end. */
static int parse_mapping(struct pctx *x, const char *prefix)
{
	yaml_event_t ev;
	char d[SHOW_MAX * 4 + 8];
	const struct key *k;
	yaml_mark_t *seen;
	int r;

	for (;;) {
		r = next(x, &ev);
		if (r < 0)
			return r;
		if (ev.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&ev);
			return 0;
		}
		if (ev.type != YAML_SCALAR_EVENT) {
			r = fail(x, &ev.start_mark, -EINVAL, "%s%sexpected a key name, got %s",
				 prefix ? prefix : "", prefix ? ": " : "",
				 describe(&ev, d, sizeof(d)));
			yaml_event_delete(&ev);
			return r;
		}
		k = find_key(prefix, (const char *)ev.data.scalar.value);
		if (!k) {
			r = unknown_key(x, prefix, &ev);
			yaml_event_delete(&ev);
			return r;
		}
		seen = &x->seen[k - keys];
		if (seen->line) {
			r = fail(x, &ev.start_mark, -EINVAL,
				 "%s: duplicate key (first set at line %zu column %zu)", k->path,
				 seen->line, seen->column);
			yaml_event_delete(&ev);
			return r;
		}
		seen->line = ev.start_mark.line + 1;
		seen->column = ev.start_mark.column + 1;
		yaml_event_delete(&ev);
		r = parse_value(x, k);
		if (r < 0)
			return r;
	}
}

/* stream-start, at most one document holding a mapping (or nothing), stream-end. */
static int parse_stream(struct pctx *x)
{
	yaml_event_t ev;
	char d[SHOW_MAX * 4 + 8];
	int docs = 0, r;

	for (;;) {
		r = next(x, &ev);
		if (r < 0)
			return r;
		switch (ev.type) {
		case YAML_STREAM_START_EVENT:
		case YAML_DOCUMENT_END_EVENT:
			break;
		case YAML_STREAM_END_EVENT:
			yaml_event_delete(&ev);
			return 0;
		case YAML_DOCUMENT_START_EVENT:
			if (++docs > 1) {
				r = fail(
					x, &ev.start_mark, -EINVAL,
					"a second YAML document ('---'); the configuration is one mapping in one document");
				yaml_event_delete(&ev);
				return r;
			}
			break;
		case YAML_MAPPING_START_EVENT:
			yaml_event_delete(&ev);
			r = parse_mapping(x, NULL);
			if (r < 0)
				return r;
			continue;
		case YAML_SCALAR_EVENT:
			if (!ev.data.scalar.length && ev.data.scalar.plain_implicit)
				break; /* an empty document: all defaults */
			/* fall through */
		default:
			r = fail(
				x, &ev.start_mark, -EINVAL,
				"expected a mapping of keys at the top (like 'node: node-1'), got %s",
				describe(&ev, d, sizeof(d)));
			yaml_event_delete(&ev);
			return r;
		}
		yaml_event_delete(&ev);
	}
}

/* Parses into *out (defaults first); *out is scratch whatever happens. */
static int parse(const char *buf, size_t len, const char *name, struct zt_config *out, char *err,
		 size_t errlen)
{
	const char *nul = len ? memchr(buf, '\0', len) : NULL;
	struct pctx *x;
	int r;

	if (len > MAX_FILE) {
		snprintf(err, errlen,
			 "%s: the file is %zu bytes; a configuration file is at most %u bytes",
			 name, len, MAX_FILE);
		return -EFBIG;
	}
	x = calloc(1, sizeof(*x));
	if (!x) {
		snprintf(err, errlen, "%s: out of memory", name);
		return -ENOMEM;
	}
	x->buf = buf;
	x->len = len;
	x->name = name;
	x->c = out;
	x->err = err;
	x->errlen = errlen;
	if (nul) {
		r = fail_at(x, (size_t)(nul - buf), -EINVAL,
			    "NUL byte at offset %zu; the configuration must be UTF-8 text",
			    (size_t)(nul - buf));
		free(x);
		return r;
	}
	if (!yaml_parser_initialize(&x->parser)) {
		free(x);
		snprintf(err, errlen, "%s: out of memory", name);
		return -ENOMEM;
	}
	yaml_parser_set_input_string(&x->parser, (const unsigned char *)buf, len);
	/* Never guess UTF-16 from a byte order mark. */
	yaml_parser_set_encoding(&x->parser, YAML_UTF8_ENCODING);
	zt_config_defaults(out);
	r = parse_stream(x);
	if (r == 0)
		r = check_detection(x);
	if (r == 0)
		r = default_forensics_dir(x);
	yaml_parser_delete(&x->parser);
	free(x);
	return r;
}

/* Validates into a scratch copy, so that *c changes only on success. */
static int load(const char *buf, size_t len, const char *name, const char *path,
		struct zt_config *c, char *err, size_t errlen)
{
	struct zt_config *tmp;
	int r;

	tmp = malloc(sizeof(*tmp));
	if (!tmp) {
		snprintf(err, errlen, "%s: out of memory", name);
		return -ENOMEM;
	}
	r = parse(buf, len, name, tmp, err, errlen);
	if (r == 0) {
		snprintf(tmp->path, sizeof(tmp->path), "%s", path);
		*c = *tmp;
		if (errlen)
			err[0] = '\0';
	}
	free(tmp);
	return r;
}

int zt_config_load_buf(const char *buf, size_t len, const char *name, struct zt_config *c,
		       char *err, size_t errlen)
{
	if (!err)
		errlen = 0;
	if (!name)
		name = "<config>";
	if (!buf && len) {
		snprintf(err, errlen, "%s: no buffer", name);
		return -EINVAL;
	}
	return load(buf ? buf : "", len, name, "", c, err, errlen);
}

int zt_config_load(const char *path, struct zt_config *c, char *err, size_t errlen)
{
	struct stat st;
	char *buf = NULL;
	size_t got = 0, cap;
	ssize_t n;
	int fd, r;

	if (!err)
		errlen = 0;
	if (!path || !*path) {
		snprintf(err, errlen, "no configuration file given");
		return -EINVAL;
	}
	if (strlen(path) >= PATH_MAX) {
		snprintf(err, errlen, "configuration path is longer than %d bytes", PATH_MAX - 1);
		return -ENAMETOOLONG;
	}
	/* O_NONBLOCK: a FIFO put in its place must not hang the start. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(-r));
		return r;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: cannot stat: %s", path, strerror(-r));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		r = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
		goto out;
	}
	if (st.st_size > (off_t)MAX_FILE) {
		snprintf(err, errlen,
			 "%s: the file is %lld bytes; a configuration file is at most %u bytes",
			 path, (long long)st.st_size, MAX_FILE);
		r = -EFBIG;
		goto out;
	}
	/* Read to EOF, not to st_size: the size may be 0 (procfs) or change under us. */
	cap = (size_t)st.st_size + 1;
	buf = malloc(cap);
	if (!buf) {
		r = -ENOMEM;
		snprintf(err, errlen, "%s: out of memory", path);
		goto out;
	}
	for (;;) {
		if (got == cap) {
			char *nb;

			if (cap > MAX_FILE) {
				snprintf(
					err, errlen,
					"%s: the file is over %u bytes; a configuration file is at most %u bytes",
					path, MAX_FILE, MAX_FILE);
				r = -EFBIG;
				goto out;
			}
			cap = cap * 2 > MAX_FILE + 1 ? MAX_FILE + 1 : cap * 2;
			nb = realloc(buf, cap);
			if (!nb) {
				r = -ENOMEM;
				snprintf(err, errlen, "%s: out of memory", path);
				goto out;
			}
			buf = nb;
		}
		n = read(fd, buf + got, cap - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			snprintf(err, errlen, "%s: cannot read: %s", path, strerror(-r));
			goto out;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	r = load(buf, got, path, path, c, err, errlen);
out:
	free(buf);
	close(fd);
	return r;
}

/* "POD_CIDR=AGENT_ADDR[:PORT]": zt_mtls_peer_parse() and zt_mtls_peer6_parse() are the readers. */
static int add_mtls_peer(struct pctx *x, const struct key *k, const char *v, const yaml_mark_t *m)
{
	struct zt_config *c = x->c;
	char q[SHOW_MAX * 4 + 8];
	struct zt_mtls_peer p;
	struct zt_mtls_peer6 p6;

	if (x->item == 0)
		c->mtls.n_peers = 0;
	if (!v)
		return 0;
	if (strlen(v) >= ZT_MTLS_PEER_LEN ||
	    (zt_mtls_peer_parse(v, &p) < 0 && zt_mtls_peer6_parse(v, &p6) < 0))
		return fail(x, m, -EINVAL,
			    "%s: expected POD_CIDR=AGENT_ADDR[:PORT], e.g. "
			    "198.18.2.0/24=198.18.100.2 or 2001:2:0:2::/64=[2001:2:0:100::2]:15008 "
			    "(an IPv6 agent in brackets), "
			    "got '%s'",
			    k->path, zt_shown(v, SHOW_MAX, q, sizeof(q)));
	if (c->mtls.n_peers >= k->max)
		return fail(x, m, -E2BIG, "%s: more than %llu peers", k->path,
			    (unsigned long long)k->max);
	memcpy(c->mtls.peers[c->mtls.n_peers++], v, strlen(v) + 1);
	return 0;
}

/*
 * "POD_CIDR=AGENT_ADDR[:PORT]" with a POD_CIDR of family (AF_INET or
 * AF_INET6). AGENT_ADDR of either family, whatever the pods speak (the
 * tunnel's frame carries the pod addresses): IPv4 as is, IPv6 in brackets
 * (a bare one would read its last group as a port). Host bits set in the
 * CIDR are refused (say the network). 0 or -EINVAL.
 */
static int peer_fields(const char *s, int family, uint8_t *net, uint8_t *plen,
		       struct zt_mtls_agent *agent, uint16_t *port)
{
	char buf[ZT_MTLS_PEER_LEN], *eq, *host, *colon = NULL, *end;
	unsigned long pt = 0;
	struct in6_addr a6;
	struct in_addr a4;
	struct zt_cidr c;
	bool host_bits;

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, strlen(s) + 1);
	eq = strchr(buf, '=');
	if (!eq)
		return -EINVAL;
	*eq++ = '\0';
	/* A network with its length: no bare address, no host bits. */
	if (!strchr(buf, '/') || zt_cidr_parse(buf, &c, &host_bits) < 0 || host_bits ||
	    c.family != family)
		return -EINVAL;
	host = eq;
	if (*eq == '[') {
		char *close = strchr(eq, ']');

		if (!close || (close[1] && close[1] != ':'))
			return -EINVAL;
		*close = '\0';
		host = eq + 1;
		if (close[1] == ':')
			colon = close + 1;
	} else {
		colon = strchr(eq, ':');
		if (colon && strchr(colon + 1, ':'))
			return -EINVAL; /* an IPv6 agent without brackets */
	}
	if (colon) {
		*colon++ = '\0';
		if (!isdigit((unsigned char)*colon))
			return -EINVAL;
		pt = strtoul(colon, &end, 10);
		if (*end || pt < 1 || pt > 65535)
			return -EINVAL;
	}
	memset(agent, 0, sizeof(*agent));
	if (host == eq && inet_pton(AF_INET, host, &a4) == 1) {
		agent->family = AF_INET;
		memcpy(agent->addr, &a4, 4);
	} else if (host != eq && inet_pton(AF_INET6, host, &a6) == 1 &&
		   !IN6_IS_ADDR_V4MAPPED(&a6)) {
		agent->family = AF_INET6; /* (an IPv4 agent is written as such) */
		memcpy(agent->addr, &a6, 16);
	} else {
		return -EINVAL;
	}
	memcpy(net, c.addr, family == AF_INET ? 4 : 16);
	*plen = c.prefixlen;
	*port = (uint16_t)pt;
	return 0;
}

int zt_mtls_peer6_parse(const char *s, struct zt_mtls_peer6 *out)
{
	struct zt_mtls_peer6 p = { 0 };

	if (peer_fields(s, AF_INET6, p.net, &p.plen, &p.agent, &p.port) < 0)
		return -EINVAL;
	*out = p;
	return 0;
}

int zt_mtls_peer_parse(const char *s, struct zt_mtls_peer *out)
{
	struct zt_mtls_peer p = { 0 };
	uint8_t net[4];

	if (peer_fields(s, AF_INET, net, &p.plen, &p.agent, &p.port) < 0)
		return -EINVAL;
	memcpy(&p.net, net, 4);
	*out = p;
	return 0;
}

uint32_t zt_config_flood_rate(const struct zt_config *c, int k, bool *configured)
{
	static const uint32_t builtin[ZT_RL_KINDS] = {
		[ZT_RL_ALL] = 0, [ZT_RL_SYN] = 2000, [ZT_RL_UDP] = 20000, [ZT_RL_ICMP] = 500
	};
	uint32_t conf;

	if (k < 0 || k >= ZT_RL_KINDS) {
		if (configured)
			*configured = false;
		return 0;
	}
	conf = k == ZT_RL_SYN  ? c->detection.flood.syn :
	       k == ZT_RL_UDP  ? c->detection.flood.udp :
	       k == ZT_RL_ICMP ? c->detection.flood.icmp :
				 c->detection.flood.all;
	if (configured)
		*configured = conf || c->ratelimit.src[k];
	return conf ? conf : c->ratelimit.src[k] ? c->ratelimit.src[k] : builtin[k];
}

size_t zt_config_diff(const struct zt_config *a, const struct zt_config *b,
		      void (*fn)(void *ctx, const char *key), void *ctx)
{
	size_t n = 0;

	for (size_t i = 0; i < ZT_ARRAY_SIZE(keys); i++) {
		const struct key *k = &keys[i];

		/* Items' keys are compared with their list (the whole feeds: list is one key). */
		if (k->kind == K_SECTION || k->in_item)
			continue;
		if (!memcmp((const char *)a + k->off, (const char *)b + k->off, k->size) &&
		    (k->kind != K_ITEMS ||
		     !memcmp((const char *)a + k->count_off, (const char *)b + k->count_off,
			     sizeof(unsigned int))))
			continue;
		n++;
		if (fn)
			fn(ctx, k->path);
	}
	return n;
}
