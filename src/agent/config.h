/* SPDX-License-Identifier: GPL-2.0-only */
/* The agent's configuration: one YAML file, validated at start. */
#ifndef ZT_CONFIG_H
#define ZT_CONFIG_H

#include <limits.h>
#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/log.h"
#include "agent/util.h"

#define ZT_MAX_IFACES 64
#define ZT_NODE_NAME_MAX 64
#define ZT_DB_URL_MAX 1024
#define ZT_LISTEN_MAX 128

#define ZT_DEFAULT_STATE_DIR "/var/lib/ztagent"
#define ZT_DEFAULT_POLICY_DIR "/etc/ztagent/policies"
#define ZT_DEFAULT_SPOOL_DIR "/var/lib/ztagent/spool"
#define ZT_DEFAULT_METRICS_LISTEN "127.0.0.1:9470"
#define ZT_DEFAULT_TRUST_DOMAIN "cluster.local"
#define ZT_DEFAULT_CA_BUNDLE "/etc/ztagent/ca/bundle.pem"
#define ZT_DEFAULT_NODE_CERT "/etc/ztagent/ca/node.pem"
#define ZT_DEFAULT_NODE_KEY "/etc/ztagent/ca/node.key"
#define ZT_DEFAULT_MTLS_PORT 15008
#define ZT_TRUST_DOMAIN_LEN 256

enum zt_xdp_mode {
	ZT_XDP_NATIVE = 0,
	ZT_XDP_GENERIC,
	ZT_XDP_AUTO, /* native, except where XDP costs the traffic it passes (veth: tc) */
	ZT_XDP_TC, /* the guard on TC ingress (tc_guard) instead of XDP */
};

#define ZT_MAX_FEEDS 32
#define ZT_FEED_NAME_MAX 64 /* with its NUL; the name is also a file name in state_dir */
#define ZT_FEED_URL_MAX 1024
#define ZT_FEED_PATH_MAX 1024

/* What a feed's content is (feeds[].format). */
enum zt_feed_format {
	ZT_FEED_CIDR = 0, /* one address or prefix a line; '#'/';' comments (DROP text, IP lists) */
	ZT_FEED_FIREHOL, /* FireHOL .netset / .ipset */
	ZT_FEED_SPAMHAUS_JSON, /* Spamhaus DROP JSON lines */
	ZT_FEED_FEODO_CSV, /* abuse.ch Feodo Tracker CSV */
	ZT_FEED_STIX2, /* STIX 2.1 bundle of indicators */
	ZT_FEED_MISP, /* MISP JSON event export */
	ZT_FEED_POLICY, /* ZeroTrustPolicy documents (not IOCs; parsed by seg/) */
	ZT_FEED_FORMAT_COUNT,
};

/* Where a feed's entries apply (feeds[].direction); bits, so BOTH is SOURCE|DESTINATION. */
enum zt_feed_direction {
	ZT_FEED_SOURCE = 1, /* inbound: the XDP guard drops packets from it */
	ZT_FEED_DESTINATION = 2, /* outbound: a pod's new flow to it */
	ZT_FEED_BOTH = 3,
};

enum zt_feed_action {
	ZT_FEED_BLOCK = 0,
	ZT_FEED_ALERT,
};

/* One entry of the feeds: list. */
struct zt_feed_config {
	char name[ZT_FEED_NAME_MAX]; /* name: required, unique */
	char url[ZT_FEED_URL_MAX]; /* url: https://, http://, file:///PATH or /PATH (file or dir) */
	enum zt_feed_format format; /* format: required */
	enum zt_feed_direction direction; /* direction: default source */
	enum zt_feed_action action; /* action: default block */
	uint64_t refresh_ns; /* refresh: default 1h */
	uint64_t timeout_ns; /* timeout: one transfer, default 30s */
	uint64_t max_bytes; /* max_bytes: body bound, default 256 MiB */
	uint32_t max_entries; /* max_entries: default 1000000 */
	uint32_t max_bad_ppm; /* max_bad_fraction in parts per million, default 10000 (1%) */
	uint32_t retries; /* retries: quick retries after a failure, default 3 */
	char ca_bundle[ZT_FEED_PATH_MAX]; /* ca_bundle: PEM file, https only; "" = system CAs */
};

#define ZT_MAX_PROTECTED 256

/* response.mode and response.detectors.*: what a detector's decision may do. */
enum zt_response_mode {
	ZT_RESPONSE_OFF = 0,
	ZT_RESPONSE_ALERT = 1,
	ZT_RESPONSE_BLOCK = 2,
};

/* The detectors, in the order of response.detectors' keys (and enum zt_threat from 1). */
enum zt_detector {
	ZT_DET_SCAN = 0,
	ZT_DET_FLOOD,
	ZT_DET_BRUTEFORCE,
	ZT_DET_SLOWCONN,
	ZT_DET_EXFILTRATION,
	ZT_DET_MODEL,
	ZT_DET_COUNT,
};

#define ZT_K8S_NODE_NAME_MAX 254 /* a Kubernetes node name (DNS subdomain) and its NUL */

/* What a pod's endpoint may do before its labels are known (kubernetes.pending_posture). */
enum zt_pending_posture {
	ZT_PENDING_DENY = 0, /* isolated both ways, except to and from the host */
	ZT_PENDING_ALLOW, /* not isolated; peers' policies still apply */
};

#define ZT_MTLS_PEERS_MAX 256
#define ZT_MTLS_PEER_LEN 112 /* an IPv6 CIDR, "=[", an IPv6 agent, "]:65535" */

enum zt_mtls_mode {
	ZT_MTLS_MODE_OFF = 0,
	ZT_MTLS_MODE_POLICY, /* requireMutualAuth / requireTLS rules */
	ZT_MTLS_MODE_STRICT, /* and all cross-node pod traffic */
};

struct zt_config {
	char path[PATH_MAX]; /* where it was read from ("" when built from defaults) */
	char node[ZT_NODE_NAME_MAX]; /* default: gethostname() */
	char bpffs[PATH_MAX]; /* default ZT_DEFAULT_BPFFS */
	char api_socket[PATH_MAX]; /* default ZT_DEFAULT_API_SOCKET */
	enum zt_log_level log_level; /* default info */
	struct {
		char interfaces[ZT_MAX_IFACES][IF_NAMESIZE]; /* xdp.interfaces */
		unsigned int n_interfaces;
		enum zt_xdp_mode mode; /* xdp.mode: auto | native | generic | tc */
		bool malformed_drop; /* xdp.malformed: drop (true) | pass */
		uint32_t blocklist_max; /* xdp.blocklist_max: per family, default 2097152 */
		uint32_t allowlist_max; /* xdp.allowlist_max: per family, default 65536 */
		uint32_t event_sample; /* xdp.event_sample: 1-in-N drops sampled, default 1 */
		uint32_t event_rate; /* xdp.event_rate: events/s per CPU at most, default 1000 */
		uint32_t ringbuf_bytes; /* xdp.ringbuf_bytes: power of two >= 4096, default 4 MiB */
		uint64_t expiry_interval_ns; /* xdp.expiry_interval: sweep period, default 1s */
	} xdp;
	char state_dir[PATH_MAX]; /* state_dir: endpoints etc., default ZT_DEFAULT_STATE_DIR */
	struct {
		char dir[PATH_MAX]; /* policy.dir: YAML files, watched; default ZT_DEFAULT_POLICY_DIR */
		bool default_deny; /* policy.default: deny (true, the default) | allow */
		uint32_t
			conntrack_max; /* policy.conntrack_max: conntrack entries, default 262144 */
	} policy;
	struct {
		char url[ZT_DB_URL_MAX]; /* database.url: libpq conninfo or URI; "" = no database */
		char spool_dir[PATH_MAX]; /* database.spool_dir */
		uint64_t spool_max_bytes; /* database.spool_max_bytes, default 1 GiB */
		uint32_t retention_months; /* database.retention_months, default 12 */
	} database;
	struct {
		uint64_t active_timeout_ns; /* flows.active_timeout, default 60s */
	} flows;
	struct {
		char listen[ZT_LISTEN_MAX]; /* metrics.listen: "ADDR:PORT", "[V6]:PORT"; "" = off */
	} metrics;
	struct zt_feed_config feeds[ZT_MAX_FEEDS]; /* feeds: threat-intelligence feeds */
	unsigned int n_feeds;
	struct {
		enum zt_mtls_mode mode; /* mtls.mode: off | policy (default) | strict */
		char trust_domain[ZT_TRUST_DOMAIN_LEN]; /* mtls.trust_domain, SPIFFE rules */
		char ca_bundle[PATH_MAX]; /* mtls.ca_bundle: the trusted roots (PEM) */
		char node_cert[PATH_MAX]; /* mtls.node_cert: this node's intermediate */
		char node_key[PATH_MAX]; /* mtls.node_key: its key, mode 0600 */
		uint64_t svid_ttl_ns; /* mtls.svid_ttl: workload SVID lifetime, default 1h */
		uint16_t port; /* mtls.port: the tunnel listener, default 15008 */
		/* mtls.peers: "POD_CIDR=AGENT_ADDR[:PORT]", the other nodes' pods and agents */
		char peers[ZT_MTLS_PEERS_MAX][ZT_MTLS_PEER_LEN];
		unsigned int n_peers;
	} mtls;
	struct {
		/* detection.feature_log: CSV of model features per flow, for tools/train; "" = off */
		char feature_log[PATH_MAX];
		char model
			[PATH_MAX]; /* detection.model: the CBOR model file; "" = detectors only */
		uint32_t target_fpr_ppm; /* detection.target_fpr, parts per million, default 1000 */
		struct zt_cidr
			protected_cidrs[ZT_MAX_PROTECTED]; /* detection.protected: never blocked */
		unsigned int n_protected;
		uint64_t
			sweep_interval_ns; /* detection.sweep_interval: conntrack sweep, default 1s */
		/* detection.realtime_priority: the event consumer's SCHED_FIFO priority, 0 off */
		uint32_t realtime_priority;
		struct {
			uint32_t theta0_ppm; /* P(success | benign), default 0.8 */
			uint32_t theta1_ppm; /* P(success | scanner), default 0.2 */
			uint32_t alpha_ppm; /* false-positive probability, default 0.01 */
			uint32_t beta_ppm; /* detection probability, default 0.99 */
			uint64_t
				probe_timeout_ns; /* no answer within: a failed probe, default 2s */
			/* walks kept: sources, and (source, destination) pairs; default 65536 */
			uint32_t max_sources;
			/*
			 * detection.scan.brake: failed first contacts (beyond the
			 * open ones) of a source in a window after which the guard
			 * drops its further first contacts until the block, while
			 * scans are answered with a block; 0 off, default 6
			 */
			uint32_t brake;
		} scan;
		struct {
			uint64_t window_ns; /* default 100ms */
			/* per source per second; 0: ratelimit.* when set, else 2000/20000/500/off */
			uint32_t syn, udp, icmp, all;
			uint32_t
				dst_factor; /* per destination: this many times the source's, default 10 */
			/*
			 * TCP segments of no connection per source per second,
			 * counted by the resets the node sends back; 0 off,
			 * default 5000
			 */
			uint32_t out_of_state;
		} flood;
		struct {
			uint32_t min_attempts; /* default 10 */
			uint64_t window_ns; /* default 1m */
			uint64_t
				refused_window_ns; /* for logins refused in the clear, default 10m */
			uint64_t
				max_duration_ns; /* longer sessions are real exchanges, default 10s */
		} bruteforce;
		struct {
			uint32_t min_conns; /* default 16 */
			uint64_t min_age_ns; /* default 3s */
			uint32_t
				max_rate; /* payload bytes/s of a trickling connection, default 256 */
		} slowconn;
		struct {
			uint64_t interval_ns; /* default 1m */
			uint64_t min_bytes; /* default 8MiB */
			uint64_t new_dest_bytes; /* default 32MiB */
			uint32_t warmup; /* active intervals learned first, default 10 */
		} exfiltration;
	} detection;
	struct {
		uint8_t mode; /* response.mode: enum zt_response_mode, default block */
		uint8_t detectors[ZT_DET_COUNT]; /* response.detectors.*: enum zt_response_mode */
		/* response.endpoints: alert (default) or block, for this node's own endpoints */
		uint8_t endpoints;
		uint64_t block_ttl_ns; /* response.block_ttl, default 10m */
		uint64_t max_ttl_ns; /* response.max_ttl: the doubling stops here, default 24h */
		uint64_t incident_update_ns; /* response.incident_update, default 5s */
		uint64_t incident_idle_ns; /* response.incident_idle, default 10m */
		uint64_t denial_window_ns; /* response.denial_window, default 10s */
	} response;
	struct {
		char dir[PATH_MAX]; /* forensics.dir, default state_dir/pcap */
		uint64_t max_bytes; /* forensics.max_bytes, default 1GiB */
		uint64_t file_bytes; /* forensics.file_bytes: rotation, default 64MiB */
		uint32_t max_files; /* forensics.max_files, default 1000 */
		uint32_t snaplen; /* forensics.snaplen, default 256 */
		uint32_t
			rate; /* forensics.rate: packets/s per capture before sampling, default 2000 */
	} forensics;
	struct {
		bool enabled; /* kubernetes.enabled: watch the API server; default false */
		char kubeconfig
			[PATH_MAX]; /* kubernetes.kubeconfig: "" = in-cluster configuration */
		/* kubernetes.node_name: "" = $NODE_NAME, else the host name (zt_config_k8s_node) */
		char node_name[ZT_K8S_NODE_NAME_MAX];
		enum zt_pending_posture pending_posture; /* kubernetes.pending_posture: deny */
	} kubernetes;
	struct {
		/*
		 * ratelimit.syn|udp|icmp|all: packets a second per source, in
		 * XDP (defaults 2000 SYN, 20000 UDP, 500 ICMP, all off);
		 * ratelimit.dst_*: the same per destination, off by default.
		 * 0 = off. Indexed by enum zt_rl_kind (ZT_RL_ALL, _SYN, _UDP, _ICMP).
		 */
		uint32_t src[4];
		uint32_t dst[4];
	} ratelimit;
	struct {
		/* drift.cni_conflist: the CNI conflist that must list ztagent-cni; "" = not checked */
		char cni_conflist[PATH_MAX];
		/*
		 * drift.blocklist_cpu: the share of one CPU the whole-map reads of
		 * the blocklist hash maps may take (ppm; 0.1 = 100000). A read of
		 * 1M entries costs ~250 ms of CPU: at 0.1 it comes every ~2.5 s.
		 */
		uint32_t blocklist_cpu_ppm;
	} drift;
};

/* Fills every field with its default. */
void zt_config_defaults(struct zt_config *c);
/* Fills one feed entry with the defaults of its optional keys (name, url, format empty). */
void zt_feed_config_defaults(struct zt_feed_config *f);
/* "cidr", "stix2", ...; "?" when out of range. */
const char *zt_feed_format_name(enum zt_feed_format f);

/*
 * The node's name as Kubernetes knows it: kubernetes.node_name, else
 * $NODE_NAME (the downward API) when it is a valid node name, else the host
 * name. 0, or -ENAMETOOLONG / -EINVAL when none fits n or is valid.
 */
int zt_config_k8s_node(const struct zt_config *c, char *buf, size_t n);
/*
 * The agent a pod CIDR's connections go to: an IPv4 or an IPv6 address
 * (network byte order; IPv4 in the first 4 bytes), whatever the pods speak.
 */
struct zt_mtls_agent {
	uint8_t family; /* AF_INET or AF_INET6 */
	uint8_t addr[16];
};

/* One mtls.peers entry, network byte order; port 0: mtls.port. */
struct zt_mtls_peer {
	uint32_t net;
	struct zt_mtls_agent agent;
	uint16_t port;
	uint8_t plen;
};

/*
 * The flood detector's per-source rate of kind k (enum zt_rl_kind), packets
 * a second (0: off): detection.flood.<kind>, else ratelimit.<kind> (the
 * detector follows the kernel's limit), else the built-in (SYN 2000, UDP
 * 20000, ICMP 500, all packets off). *configured (may be NULL): whether the
 * configuration named the rate rather than the built-in giving it.
 */
uint32_t zt_config_flood_rate(const struct zt_config *c, int k, bool *configured);

/*
 * Parses "POD_CIDR=AGENT_ADDR[:PORT]" (an IPv4 POD_CIDR); AGENT_ADDR is an
 * IPv4 address or an IPv6 one in brackets ("[2001:db8::2]:15008"); 0 or
 * -EINVAL.
 */
int zt_mtls_peer_parse(const char *s, struct zt_mtls_peer *out);

/* An mtls.peers entry with an IPv6 pod CIDR (network order). */
struct zt_mtls_peer6 {
	uint8_t net[16];
	struct zt_mtls_agent agent;
	uint16_t port; /* 0: mtls.port */
	uint8_t plen;
};

/* Parses "V6_POD_CIDR=AGENT_ADDR[:PORT]"; 0 or -EINVAL. */
int zt_mtls_peer6_parse(const char *s, struct zt_mtls_peer6 *out);

/* "deny" | "allow" */
/* "native", "generic", "auto", "tc" (xdp.mode's values) */
const char *zt_xdp_mode_name(enum zt_xdp_mode m);
const char *zt_pending_posture_name(enum zt_pending_posture p);

/*
 * Reads and validates a file. On failure returns -errno-style code, leaves
 * *c untouched, and writes one message to err naming the file, line, column,
 * key and what was expected, e.g.
 *   "/etc/ztagent.yaml:7:9: xdp.mode: expected native, generic, auto or tc, got 'fast'".
 * Unknown keys, duplicate keys, wrong types, out-of-range numbers, more than
 * one document, anchors/aliases, and files over 1 MiB are errors.
 */
int zt_config_load(const char *path, struct zt_config *c, char *err, size_t errlen);
/* Same, from memory; name is used in messages in place of the path. */
int zt_config_load_buf(const char *buf, size_t len, const char *name, struct zt_config *c,
		       char *err, size_t errlen);
/*
 * Calls fn (may be NULL) with the path of every key whose value differs
 * between a and b, both filled by zt_config_load(), in the file's order
 * ("log_level", "xdp.mode", ...; the feeds: list is one key, "feeds").
 * Returns how many differ.
 */
size_t zt_config_diff(const struct zt_config *a, const struct zt_config *b,
		      void (*fn)(void *ctx, const char *key), void *ctx);

#endif
