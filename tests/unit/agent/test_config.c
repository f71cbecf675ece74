// SPDX-License-Identifier: GPL-2.0-only
/* Unit tests: the configuration file, valid and hostile. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "agent/config.h"
#include "agent/util.h"
#include "ztagent.h"

/* Loads from memory, NUL-terminated input, name "t.yaml". */
static int load_str(const char *y, struct zt_config *c, char *err, size_t errlen)
{
	return zt_config_load_buf(y, strlen(y), "t.yaml", c, err, errlen);
}

static void assert_defaults(const struct zt_config *c)
{
	assert_string_equal(c->path, "");
	assert_string_equal(c->bpffs, "/sys/fs/bpf/ztagent");
	assert_string_equal(c->api_socket, "/run/ztagent/api.sock");
	assert_int_equal(c->log_level, ZT_LOG_INFO);
	assert_int_equal(c->xdp.n_interfaces, 0);
	assert_int_equal(c->xdp.mode, ZT_XDP_AUTO);
	assert_true(c->xdp.malformed_drop);
	assert_int_equal(c->xdp.blocklist_max, 2097152);
	assert_int_equal(c->xdp.allowlist_max, 65536);
	assert_int_equal(c->xdp.event_sample, 1);
	assert_int_equal(c->xdp.event_rate, 1000);
	assert_int_equal(c->xdp.ringbuf_bytes, 4u << 20);
	assert_int_equal(c->xdp.expiry_interval_ns, 1000000000ULL);
	/* The hostname default obeys the same rule as a configured name. */
	assert_true(strlen(c->node) > 0 && strlen(c->node) < ZT_NODE_NAME_MAX);
	assert_int_equal(strspn(c->node, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
					 "0123456789._-"),
			 strlen(c->node));
}

static void test_defaults(void **state)
{
	static const char *const empty[] = {
		"",	  "\n\n   \n",	"# nothing but a comment\n",
		"---\n",  "---\n...\n", "{}\n",
		"xdp:\n", "xdp: {}\n",	"xdp:\n# an empty section\n\n",
	};
	struct zt_config c, d;
	char err[512];

	zt_config_defaults(&d);
	assert_defaults(&d);
	for (size_t i = 0; i < ZT_ARRAY_SIZE(empty); i++) {
		memset(&c, 0xa5, sizeof(c));
		strcpy(err, "stale");
		if (load_str(empty[i], &c, err, sizeof(err)) != 0)
			fail_msg("'%s' refused: %s", empty[i], err);
		assert_string_equal(err, ""); /* cleared on success */
		assert_defaults(&c);
		assert_memory_equal(&c, &d, sizeof(c));
	}
	/* A NULL buffer of length 0 is an empty file. */
	assert_int_equal(zt_config_load_buf(NULL, 0, "t.yaml", &c, err, sizeof(err)), 0);
	assert_defaults(&c);
	/* No room for a message is fine too. */
	assert_int_equal(zt_config_load_buf("", 0, "t.yaml", &c, NULL, 0), 0);
}

static void test_full(void **state)
{
	static const char y[] = "# ztagent configuration\n"
				"node: node-1                      # recorded with every flow\n"
				"bpffs: /sys/fs/bpf/zt/\n"
				"api_socket: \"/run/zt/api.sock\"\n"
				"log_level: 'debug'\n"
				"xdp:\n"
				"  interfaces: [eth0, eth1, bond0.100, veth-zt_1]\n"
				"  mode: generic\n"
				"  malformed: pass\n"
				"  blocklist_max: 1048576\n"
				"  allowlist_max: 1024\n"
				"  event_sample: 10\n"
				"  event_rate: 0\n"
				"  ringbuf_bytes: 1MiB\n"
				"  expiry_interval: 500ms\n";
	struct zt_config c;
	char err[512] = "";

	if (load_str(y, &c, err, sizeof(err)))
		fail_msg("%s", err);
	assert_string_equal(c.path, ""); /* from memory */
	assert_string_equal(c.node, "node-1");
	assert_string_equal(c.bpffs, "/sys/fs/bpf/zt"); /* trailing slash dropped */
	assert_string_equal(c.api_socket, "/run/zt/api.sock");
	assert_int_equal(c.log_level, ZT_LOG_DEBUG);
	assert_int_equal(c.xdp.n_interfaces, 4);
	assert_string_equal(c.xdp.interfaces[0], "eth0");
	assert_string_equal(c.xdp.interfaces[1], "eth1");
	assert_string_equal(c.xdp.interfaces[2], "bond0.100");
	assert_string_equal(c.xdp.interfaces[3], "veth-zt_1");
	assert_int_equal(c.xdp.mode, ZT_XDP_GENERIC);
	assert_false(c.xdp.malformed_drop);
	assert_int_equal(c.xdp.blocklist_max, 1048576);
	assert_int_equal(c.xdp.allowlist_max, 1024);
	assert_int_equal(c.xdp.event_sample, 10);
	assert_int_equal(c.xdp.event_rate, 0);
	assert_int_equal(c.xdp.ringbuf_bytes, 1u << 20);
	assert_int_equal(c.xdp.expiry_interval_ns, 500000000ULL);
}

/* detection.feature_log: off by default, an absolute path when set. */
static void test_feature_log(void **state)
{
	struct zt_config c;
	char err[512] = "";

	zt_config_defaults(&c);
	assert_string_equal(c.detection.feature_log, "");
	if (load_str("detection:\n  feature_log: /var/lib/ztagent/features.csv\n", &c, err,
		     sizeof(err)))
		fail_msg("%s", err);
	assert_string_equal(c.detection.feature_log, "/var/lib/ztagent/features.csv");
}

/* ratelimit.*: the contract as defaults, 0 = off, extras, bounds. */
static void test_ratelimit(void **state)
{
	struct zt_config c;
	char err[512] = "";

	zt_config_defaults(&c);
	/* The contract's values per source; per destination off. */
	assert_int_equal(c.ratelimit.src[ZT_RL_SYN], 2000);
	assert_int_equal(c.ratelimit.src[ZT_RL_UDP], 20000);
	assert_int_equal(c.ratelimit.src[ZT_RL_ICMP], 500);
	assert_int_equal(c.ratelimit.src[ZT_RL_ALL], 0);
	for (int k = 0; k < 4; k++)
		assert_int_equal(c.ratelimit.dst[k], 0);
	if (load_str("ratelimit:\n  syn: 0\n", &c, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(c.ratelimit.src[ZT_RL_SYN], 0);
	if (load_str("ratelimit:\n  syn: 2000\n  udp: 20000\n  icmp: 500\n  dst_syn: 100000\n", &c,
		     err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(c.ratelimit.src[ZT_RL_SYN], 2000);
	assert_int_equal(c.ratelimit.src[ZT_RL_UDP], 20000);
	assert_int_equal(c.ratelimit.src[ZT_RL_ICMP], 500);
	assert_int_equal(c.ratelimit.src[ZT_RL_ALL], 0);
	assert_int_equal(c.ratelimit.dst[ZT_RL_SYN], 100000);
	assert_int_equal(c.ratelimit.dst[ZT_RL_UDP], 0);
	assert_int_equal(load_str("ratelimit:\n  syn: -1\n", &c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "ratelimit.syn"));
	assert_int_equal(load_str("ratelimit:\n  udp: 1000000000\n", &c, err, sizeof(err)),
			 -ERANGE);
	assert_non_null(strstr(err, "ratelimit.udp"));
	assert_int_not_equal(load_str("ratelimit:\n  tcp: 5\n", &c, err, sizeof(err)), 0);
}

/* drift.blocklist_cpu: a share of one CPU, 0.1 by default, 0 turns the whole reads off. */
static void test_drift_cpu(void **state)
{
	struct zt_config c;
	char err[512] = "";

	zt_config_defaults(&c);
	assert_int_equal(c.drift.blocklist_cpu_ppm, 100000);
	if (load_str("drift:\n  blocklist_cpu: 0.25\n", &c, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(c.drift.blocklist_cpu_ppm, 250000);
	if (load_str("drift:\n  blocklist_cpu: 5%\n", &c, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(c.drift.blocklist_cpu_ppm, 50000);
	if (load_str("drift:\n  blocklist_cpu: 0\n", &c, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(c.drift.blocklist_cpu_ppm, 0);
	assert_int_not_equal(load_str("drift:\n  blocklist_cpu: 1.5\n", &c, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "drift.blocklist_cpu"));
}

/* Other spellings that must be accepted, and what they give. */
static void test_forms(void **state)
{
	struct zt_config c;
	char err[512] = "";

	/* Block-style list, flow-style section, a UTF-8 byte order mark, a tab after ':'. */
	assert_int_equal(
		load_str("xdp:\n  interfaces:\n    - eth0\n    - 'eth1'\n", &c, err, sizeof(err)),
		0);
	assert_int_equal(c.xdp.n_interfaces, 2);
	assert_string_equal(c.xdp.interfaces[1], "eth1");
	assert_int_equal(
		load_str("xdp: {mode: generic, interfaces: [eth0]}\n", &c, err, sizeof(err)), 0);
	assert_int_equal(c.xdp.mode, ZT_XDP_GENERIC);
	assert_int_equal(c.xdp.n_interfaces, 1);
	assert_int_equal(load_str("\xef\xbb\xbfnode: a\n", &c, err, sizeof(err)), 0);
	assert_string_equal(c.node, "a");
	assert_int_equal(load_str("xdp:\n  mode:\tgeneric\n", &c, err, sizeof(err)), 0);
	assert_int_equal(c.xdp.mode, ZT_XDP_GENERIC);
	assert_int_equal(load_str("xdp:\n  mode: tc\n", &c, err, sizeof(err)), 0);
	assert_int_equal(c.xdp.mode, ZT_XDP_TC);
	assert_int_equal(load_str("xdp:\n  interfaces: []\n", &c, err, sizeof(err)), 0);
	assert_int_equal(c.xdp.n_interfaces, 0);
	assert_int_equal(load_str("%YAML 1.1\n---\nnode: a\n...\n", &c, err, sizeof(err)), 0);
	assert_int_equal(load_str("bpffs: /\n", &c, err, sizeof(err)), 0);
	assert_string_equal(c.bpffs, "/");
	assert_int_equal(load_str("bpffs: /a///\n", &c, err, sizeof(err)), 0);
	assert_string_equal(c.bpffs, "/a");
	/* Quoted numbers are numbers; sizes and durations in every unit. */
	assert_int_equal(load_str("xdp:\n  event_rate: \"42\"\n  ringbuf_bytes: 65536\n"
				  "  expiry_interval: 1m30s\n",
				  &c, err, sizeof(err)),
			 0);
	assert_int_equal(c.xdp.event_rate, 42);
	assert_int_equal(c.xdp.ringbuf_bytes, 65536);
	assert_int_equal(c.xdp.expiry_interval_ns, 90000000000ULL);
	assert_int_equal(
		load_str("xdp:\n  ringbuf_bytes: 8K\n  expiry_interval: 2\n", &c, err, sizeof(err)),
		0);
	assert_int_equal(c.xdp.ringbuf_bytes, 8192);
	assert_int_equal(c.xdp.expiry_interval_ns, 2000000000ULL);
}

/* The edges of every range, and names of the longest allowed length. */
static void test_limits(void **state)
{
	static const struct {
		const char *yaml;
		size_t off; /* field, size 4 or 8 */
		uint64_t want;
	} t[] = {
#define OFF(f) offsetof(struct zt_config, f)
		{ "xdp:\n  blocklist_max: 1\n", OFF(xdp.blocklist_max), 1 },
		{ "xdp:\n  blocklist_max: 16777216\n", OFF(xdp.blocklist_max), 16777216 },
		{ "xdp:\n  allowlist_max: 1\n", OFF(xdp.allowlist_max), 1 },
		{ "xdp:\n  allowlist_max: 1048576\n", OFF(xdp.allowlist_max), 1048576 },
		{ "xdp:\n  event_sample: 1\n", OFF(xdp.event_sample), 1 },
		{ "xdp:\n  event_sample: 1000000\n", OFF(xdp.event_sample), 1000000 },
		{ "xdp:\n  event_rate: 0\n", OFF(xdp.event_rate), 0 },
		{ "xdp:\n  event_rate: 10000000\n", OFF(xdp.event_rate), 10000000 },
		{ "xdp:\n  ringbuf_bytes: 4096\n", OFF(xdp.ringbuf_bytes), 4096 },
		{ "xdp:\n  ringbuf_bytes: 4KiB\n", OFF(xdp.ringbuf_bytes), 4096 },
		{ "xdp:\n  ringbuf_bytes: 1GiB\n", OFF(xdp.ringbuf_bytes), 1u << 30 },
		{ "xdp:\n  expiry_interval: 100ms\n", OFF(xdp.expiry_interval_ns), 100000000ULL },
		{ "xdp:\n  expiry_interval: 1h\n", OFF(xdp.expiry_interval_ns), 3600000000000ULL },
		{ "xdp:\n  expiry_interval: 60m\n", OFF(xdp.expiry_interval_ns), 3600000000000ULL },
#undef OFF
	};
	struct zt_config c;
	char err[512] = "", y[512], name[200];

	for (size_t i = 0; i < ZT_ARRAY_SIZE(t); i++) {
		uint64_t got;

		if (load_str(t[i].yaml, &c, err, sizeof(err)))
			fail_msg("'%s' refused: %s", t[i].yaml, err);
		if (t[i].off == offsetof(struct zt_config, xdp.expiry_interval_ns))
			got = c.xdp.expiry_interval_ns;
		else
			got = *(uint32_t *)((char *)&c + t[i].off);
		if (got != t[i].want)
			fail_msg("'%s' gave %llu", t[i].yaml, (unsigned long long)got);
	}

	/* node: 63 bytes is fine. */
	memset(name, 'n', 63);
	name[63] = '\0';
	snprintf(y, sizeof(y), "node: %s\n", name);
	assert_int_equal(load_str(y, &c, err, sizeof(err)), 0);
	assert_string_equal(c.node, name);
	/* api_socket: 107 bytes (sun_path less its NUL) is fine. */
	name[0] = '/';
	memset(name + 1, 's', 106);
	name[107] = '\0';
	snprintf(y, sizeof(y), "api_socket: %s\n", name);
	assert_int_equal(load_str(y, &c, err, sizeof(err)), 0);
	assert_string_equal(c.api_socket, name);
	/* Interface names of 15 bytes. */
	assert_int_equal(load_str("xdp:\n  interfaces: [abcdefghijklmno]\n", &c, err, sizeof(err)),
			 0);
	assert_string_equal(c.xdp.interfaces[0], "abcdefghijklmno");
}

static void test_iface_count(void **state)
{
	char y[4096], err[512] = "";
	struct zt_config c, before;
	size_t o;

	o = (size_t)snprintf(y, sizeof(y), "xdp:\n  interfaces: [");
	for (int i = 0; i < ZT_MAX_IFACES; i++)
		o += (size_t)snprintf(y + o, sizeof(y) - o, "%seth%d", i ? ", " : "", i);
	snprintf(y + o, sizeof(y) - o, "]\n");
	assert_int_equal(load_str(y, &c, err, sizeof(err)), 0);
	assert_int_equal(c.xdp.n_interfaces, ZT_MAX_IFACES);
	assert_string_equal(c.xdp.interfaces[ZT_MAX_IFACES - 1], "eth63");

	/* One more is refused, naming the limit. */
	snprintf(y + o, sizeof(y) - o, ", eth64]\n");
	memset(&c, 0xa5, sizeof(c));
	before = c;
	assert_int_equal(load_str(y, &c, err, sizeof(err)), -E2BIG);
	assert_non_null(strstr(err, "xdp.interfaces: more than 64 interfaces"));
	assert_non_null(strstr(err, "t.yaml:2:"));
	assert_memory_equal(&c, &before, sizeof(c));
}

/* Each bad file, the error it gives, and substrings its message must contain. */
static const struct {
	const char *yaml;
	int r;
	const char *want1, *want2;
} bad[] = {
	/* Unknown and duplicate keys. */
	{ "xdp:\n  mode: fast\n", -EINVAL,
	  "t.yaml:2:9: xdp.mode: ", "expected native, generic, auto or tc, got 'fast'" },
	{ "xdp:\n  mdoe: native\n", -EINVAL, "t.yaml:2:3: unknown key 'xdp.mdoe'",
	  "did you mean 'xdp.mode'?" },
	{ "nodes: x\n", -EINVAL, "t.yaml:1:1: unknown key 'nodes'", "did you mean 'node'?" },
	{ "mode: native\n", -EINVAL, "t.yaml:1:1: unknown key 'mode'", "did you mean 'xdp.mode'?" },
	{ "xdp.mode: native\n", -EINVAL, "t.yaml:1:1: unknown key 'xdp.mode'",
	  "write 'mode:' under 'xdp:'" },
	{ "xdp:\n  xdp: {}\n", -EINVAL, "t.yaml:2:3: unknown key 'xdp.xdp'", "" },
	{ "policy:\n  x: 1\n", -EINVAL, "t.yaml:2:3: unknown key 'policy.x'", "" },
	{ "policy:\n  default: maybe\n", -EINVAL, "t.yaml:2:12: policy.default: expected", "" },
	{ "metrics:\n  listen: 1.2.3.4\n", -EINVAL,
	  "t.yaml:2:11: metrics.listen: expected ADDRESS:PORT", "" },
	{ "database:\n  spool_max_bytes: 1KiB\n", -ERANGE,
	  "t.yaml:2:20: database.spool_max_bytes: expected a size", "" },
	{ "database:\n  url: \"a\\nb\"\n", -EINVAL, "t.yaml:2:8: database.url: control character",
	  "" },
	{ "detection:\n  feature_log: features.csv\n", -EINVAL,
	  "t.yaml:2:16: detection.feature_log: expected an absolute file path", "" },
	{ "'': x\n", -EINVAL, "t.yaml:1:1: unknown key ''", "" },
	{ "zzzzzzzzzz: 1\n", -EINVAL, "unknown key 'zzzzzzzzzz'", "" },
	{ "node: a\nnode: b\n", -EINVAL, "t.yaml:2:1: node: duplicate key",
	  "first set at line 1 column 1" },
	{ "xdp:\n  mode: native\nxdp:\n  mode: generic\n", -EINVAL,
	  "t.yaml:3:1: xdp: duplicate key", "" },
	{ "xdp:\n  mode: native\n  mode: generic\n", -EINVAL, "t.yaml:3:3: xdp.mode: duplicate key",
	  "line 2 column 3" },
	{ "xdp: {mode: native, mode: generic}\n", -EINVAL, "t.yaml:1:21: xdp.mode: duplicate key",
	  "" },

	/* node */
	{ "node: 'has space'\n", -EINVAL, "t.yaml:1:7: node: expected a name of 1 to 63 letters",
	  "got 'has space'" },
	{ "node: ''\n", -EINVAL, "t.yaml:1:7: node:", "got ''" },
	{ "node:\n", -EINVAL, "t.yaml:1:6: node:", "got ''" },
	{ "node: a/b\n", -EINVAL, "node: expected a name", "got 'a/b'" },
	{ "node: n\xc3\xa9\n", -EINVAL, "node: expected a name", "got 'n\\xc3\\xa9'" },
	{ "node: x123456789012345678901234567890123456789012345678901234567890123\n", -EINVAL,
	  "node: expected a name of 1 to 63", "got 'x123456789012345678901234567890123456789...'" },
	{ "node: \"it's\"\n", -EINVAL, "node:", "got 'it\\x27s'" },
	{ "node: \"a\\tb\"\n", -EINVAL, "node:", "got 'a\\x09b'" },
	{ "node: [a]\n", -EINVAL, "t.yaml:1:7: node: expected a single value, got a list", "" },
	{ "node: {a: b}\n", -EINVAL, "t.yaml:1:7: node: expected a single value, got a mapping",
	  "" },
	{ "node:\n  a: b\n", -EINVAL, "t.yaml:2:3: node: expected a single value, got a mapping",
	  "" },

	/* bpffs, api_socket */
	{ "bpffs: relative/path\n", -EINVAL,
	  "t.yaml:1:8: bpffs: expected an absolute directory path", "got 'relative/path'" },
	{ "bpffs: ''\n", -EINVAL, "bpffs: expected an absolute", "got ''" },
	{ "bpffs: \"/a\\nb\"\n", -EINVAL, "bpffs: expected an absolute", "got '/a\\x0ab'" },
	{ "bpffs: [/a]\n", -EINVAL, "bpffs: expected a single value, got a list", "" },
	{ "api_socket: /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
	  -EINVAL, "t.yaml:1:13: api_socket: expected an absolute socket path of at most 107 bytes",
	  "got '/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...'" },
	{ "api_socket: run/api.sock\n", -EINVAL, "api_socket: expected an absolute socket path",
	  "got 'run/api.sock'" },
	{ "api_socket: /run/ztagent/\n", -EINVAL, "api_socket:", "not ending in '/'" },

	/* log_level */
	{ "log_level: loud\n", -EINVAL,
	  "t.yaml:1:12: log_level: expected error, warn, info or debug, got 'loud'", "" },
	{ "log_level: INFO\n", -EINVAL, "log_level: expected", "got 'INFO'" },
	{ "log_level: 3\n", -EINVAL, "log_level: expected", "got '3'" },

	/* xdp section */
	{ "xdp: 5\n", -EINVAL, "t.yaml:1:6: xdp: expected a mapping of keys (a section), got '5'",
	  "" },
	{ "xdp: []\n", -EINVAL, "t.yaml:1:6: xdp: expected a mapping", "got a list" },
	{ "xdp: ~\n", -EINVAL, "xdp: expected a mapping", "got '~'" },
	{ "xdp:\n  - mode\n", -EINVAL, "t.yaml:2:3: xdp: expected a mapping", "got a list" },
	{ "xdp:\n  ? [a]\n  : b\n", -EINVAL, "t.yaml:2:5: xdp: expected a key name, got a list",
	  "" },

	/* xdp.interfaces */
	{ "xdp:\n  interfaces: eth0\n", -EINVAL,
	  "t.yaml:2:15: xdp.interfaces: expected a list like [eth0, eth1]", "got 'eth0'" },
	{ "xdp:\n  interfaces:\n", -EINVAL, "t.yaml:2:14: xdp.interfaces: expected a list",
	  "got nothing" },
	{ "xdp:\n  interfaces: {eth0: 1}\n", -EINVAL, "xdp.interfaces: expected a list",
	  "got a mapping" },
	{ "xdp:\n  interfaces: [eth0, eth0]\n", -EINVAL,
	  "t.yaml:2:22: xdp.interfaces: 'eth0' is listed twice", "" },
	{ "xdp:\n  interfaces: [averyveryverylongname]\n", -EINVAL,
	  "t.yaml:2:16: xdp.interfaces: expected an interface name of 1 to 15",
	  "got 'averyveryverylongname'" },
	{ "xdp:\n  interfaces: [abcdefghijklmnop]\n", -EINVAL, "xdp.interfaces: expected",
	  "got 'abcdefghijklmnop'" },
	{ "xdp:\n  interfaces: ['']\n", -EINVAL, "xdp.interfaces: expected", "got ''" },
	{ "xdp:\n  interfaces: ['eth 0']\n", -EINVAL, "xdp.interfaces: expected", "got 'eth 0'" },
	{ "xdp:\n  interfaces: [\"eth\\t0\"]\n", -EINVAL, "xdp.interfaces: expected",
	  "got 'eth\\x090'" },
	{ "xdp:\n  interfaces: [eth/0]\n", -EINVAL, "xdp.interfaces: expected", "got 'eth/0'" },
	{ "xdp:\n  interfaces: ['eth0:1']\n", -EINVAL, "xdp.interfaces: expected", "got 'eth0:1'" },
	{ "xdp:\n  interfaces: ['..']\n", -EINVAL, "xdp.interfaces: expected", "got '..'" },
	{ "xdp:\n  interfaces: [et\xc3\xa9]\n", -EINVAL, "xdp.interfaces: expected",
	  "got 'et\\xc3\\xa9'" },
	{ "xdp:\n  interfaces: [[eth0]]\n", -EINVAL,
	  "t.yaml:2:16: xdp.interfaces: expected a list of values, got a list", "" },
	{ "xdp:\n  interfaces: [{a: b}]\n", -EINVAL, "xdp.interfaces: expected a list of values",
	  "got a mapping" },
	{ "xdp:\n  interfaces:\n    - eth0\n    - eth1\n    - eth0\n", -EINVAL,
	  "t.yaml:5:7: xdp.interfaces: 'eth0' is listed twice", "" },

	/* xdp.mode, xdp.malformed */
	{ "xdp:\n  mode: Native\n", -EINVAL, "xdp.mode: expected native, generic, auto or tc",
	  "got 'Native'" },
	{ "xdp:\n  mode: ''\n", -EINVAL, "xdp.mode: expected native, generic, auto or tc",
	  "got ''" },
	{ "xdp:\n  mode: [native]\n", -EINVAL, "t.yaml:2:9: xdp.mode: expected a single value",
	  "got a list" },
	{ "xdp:\n  malformed: maybe\n", -EINVAL,
	  "t.yaml:2:14: xdp.malformed: expected drop or pass", "got 'maybe'" },
	{ "xdp:\n  malformed: yes\n", -EINVAL, "xdp.malformed: expected drop or pass",
	  "got 'yes'" },

	/* xdp numbers */
	{ "xdp:\n  blocklist_max: 0\n", -ERANGE,
	  "t.yaml:2:18: xdp.blocklist_max: expected a whole number from 1 to 16777216", "got '0'" },
	{ "xdp:\n  blocklist_max: 16777217\n", -ERANGE, "xdp.blocklist_max: expected",
	  "got '16777217'" },
	{ "xdp:\n  blocklist_max: 99999999999\n", -ERANGE, "xdp.blocklist_max",
	  "got '99999999999'" },
	{ "xdp:\n  blocklist_max: 99999999999999999999999\n", -ERANGE, "xdp.blocklist_max",
	  "got '99999999999999999999999'" },
	{ "xdp:\n  blocklist_max: -5\n", -EINVAL, "xdp.blocklist_max: expected a whole number",
	  "got '-5'" },
	{ "xdp:\n  blocklist_max: 0x100\n", -EINVAL, "xdp.blocklist_max", "got '0x100'" },
	{ "xdp:\n  blocklist_max: 1e6\n", -EINVAL, "xdp.blocklist_max", "got '1e6'" },
	{ "xdp:\n  blocklist_max: 1_000\n", -EINVAL, "xdp.blocklist_max", "got '1_000'" },
	{ "xdp:\n  blocklist_max: ' 5'\n", -EINVAL, "xdp.blocklist_max", "got ' 5'" },
	{ "xdp:\n  blocklist_max: 1MiB\n", -EINVAL, "xdp.blocklist_max", "got '1MiB'" },
	{ "xdp:\n  allowlist_max: 0\n", -ERANGE,
	  "xdp.allowlist_max: expected a whole number from 1 to 1048576", "got '0'" },
	{ "xdp:\n  allowlist_max: 1048577\n", -ERANGE, "xdp.allowlist_max", "got '1048577'" },
	{ "xdp:\n  event_sample: 0\n", -ERANGE,
	  "xdp.event_sample: expected a whole number from 1 to 1000000", "got '0'" },
	{ "xdp:\n  event_sample: 1000001\n", -ERANGE, "xdp.event_sample", "got '1000001'" },
	{ "xdp:\n  event_sample: 1.5\n", -EINVAL, "xdp.event_sample: expected a whole number",
	  "got '1.5'" },
	{ "xdp:\n  event_rate: 10000001\n", -ERANGE,
	  "xdp.event_rate: expected a whole number from 0 to 10000000", "got '10000001'" },
	{ "xdp:\n  event_rate: ''\n", -EINVAL, "xdp.event_rate", "got ''" },
	{ "xdp:\n  event_rate:\n", -EINVAL, "t.yaml:2:14: xdp.event_rate", "got ''" },

	/* xdp.ringbuf_bytes */
	{ "xdp:\n  ringbuf_bytes: 3000\n", -ERANGE,
	  "t.yaml:2:18: xdp.ringbuf_bytes: expected a power of two from 4KiB to 1GiB",
	  "got '3000'" },
	{ "xdp:\n  ringbuf_bytes: 3MiB\n", -ERANGE, "xdp.ringbuf_bytes: expected a power of two",
	  "got '3MiB'" },
	{ "xdp:\n  ringbuf_bytes: 2048\n", -ERANGE, "xdp.ringbuf_bytes", "got '2048'" },
	{ "xdp:\n  ringbuf_bytes: 2GiB\n", -ERANGE, "xdp.ringbuf_bytes", "got '2GiB'" },
	{ "xdp:\n  ringbuf_bytes: 0\n", -ERANGE, "xdp.ringbuf_bytes", "got '0'" },
	{ "xdp:\n  ringbuf_bytes: 4 MiB\n", -EINVAL, "xdp.ringbuf_bytes", "got '4 MiB'" },
	{ "xdp:\n  ringbuf_bytes: 4mb\n", -EINVAL, "xdp.ringbuf_bytes", "got '4mb'" },
	{ "xdp:\n  ringbuf_bytes: 99999999999999TiB\n", -ERANGE, "xdp.ringbuf_bytes",
	  "got '99999999999999TiB'" },

	/* xdp.expiry_interval */
	{ "xdp:\n  expiry_interval: 10ms\n", -ERANGE,
	  "t.yaml:2:20: xdp.expiry_interval: expected a duration from 100ms to 1h", "got '10ms'" },
	{ "xdp:\n  expiry_interval: 0\n", -ERANGE, "xdp.expiry_interval", "got '0'" },
	{ "xdp:\n  expiry_interval: 1h1ms\n", -ERANGE, "xdp.expiry_interval", "got '1h1ms'" },
	{ "xdp:\n  expiry_interval: 2d\n", -ERANGE, "xdp.expiry_interval", "got '2d'" },
	{ "xdp:\n  expiry_interval: 99999999999999999999d\n", -ERANGE, "xdp.expiry_interval",
	  "got '99999999999999999999d'" },
	{ "xdp:\n  expiry_interval: soon\n", -EINVAL, "xdp.expiry_interval: expected a duration",
	  "got 'soon'" },
	{ "xdp:\n  expiry_interval: 1h-5m\n", -EINVAL, "xdp.expiry_interval", "got '1h-5m'" },
	{ "xdp:\n  expiry_interval: 1.5s\n", -EINVAL, "xdp.expiry_interval", "got '1.5s'" },

	/* Not one mapping. */
	{ "- a\n- b\n", -EINVAL, "t.yaml:1:1: expected a mapping of keys at the top",
	  "got a list" },
	{ "just a string\n", -EINVAL, "t.yaml:1:1: expected a mapping of keys at the top",
	  "got 'just a string'" },
	{ "~\n", -EINVAL, "t.yaml:1:1: expected a mapping", "got '~'" },
	{ "''\n", -EINVAL, "t.yaml:1:1: expected a mapping", "got ''" },
	{ "node: a\n---\nnode: b\n", -EINVAL, "t.yaml:2:1: a second YAML document", "" },
	{ "---\n---\n", -EINVAL, "t.yaml:2:1: a second YAML document", "" },
	{ "node: a\n...\n---\n", -EINVAL, "t.yaml:3:1: a second YAML document", "" },
	{ "? [a]\n: b\n", -EINVAL, "t.yaml:1:3: expected a key name, got a list", "" },

	/* What YAML has and the configuration does not need. */
	{ "node: &x a\nbpffs: *x\n", -EINVAL, "t.yaml:1:7: anchors (&name) are not allowed", "" },
	{ "xdp: &s\n  mode: native\n", -EINVAL, "t.yaml:1:6: anchors", "" },
	{ "node: *x\n", -EINVAL, "t.yaml:1:7: aliases (*name) are not allowed", "" },
	{ "xdp:\n  interfaces: [&e eth0]\n", -EINVAL, "t.yaml:2:16: anchors", "" },
	{ "node: !!str a\n", -EINVAL, "t.yaml:1:7: tags ('tag:yaml.org,2002:str') are not allowed",
	  "" },
	{ "xdp: !custom\n  mode: native\n", -EINVAL, "t.yaml:1:6: tags ('!custom')", "" },
	{ "<<: {node: a}\n", -EINVAL, "unknown key '<<'", "" },

	/* Syntax. */
	{ "node: [unclosed\n", -EINVAL, "t.yaml:1:7: node: expected a single value, got a list",
	  "" },
	{ "xdp:\n  interfaces: [unclosed\n", -EINVAL,
	  "t.yaml:3:1: YAML syntax error:", "while parsing a flow sequence at line 2 column 15" },
	{ "node: a: b\n", -EINVAL, "t.yaml:1:8: YAML syntax error: mapping values are not allowed",
	  "" },
	{ "node: \"a\n", -EINVAL, "t.yaml:2:1: YAML syntax error: found unexpected end of stream",
	  "while scanning a quoted scalar at line 1 column 7" },
	{ "xdp:\n\tmode: native\n", -EINVAL,
	  "t.yaml:2:1: YAML syntax error: found character that cannot start any token", "" },
	{ "xdp:\n  mode: native\n node: a\n", -EINVAL, "t.yaml:3:2: YAML syntax error:", "" },
	/* Over-indented: YAML folds it into the value, which is then refused. */
	{ "node: a\n  bpffs: /x\n", -EINVAL, "t.yaml:1:7: node: expected a name", "got 'a bpffs'" },
	{ "{node: a\n", -EINVAL, "YAML syntax error:", "while parsing a flow mapping" },
	{ "node: 'a\n", -EINVAL, "YAML syntax error:", "quoted scalar" },
	{ "node: \"\\q\"\n", -EINVAL, "t.yaml:1:8: YAML syntax error:", "escape" },
	{ "%YAML 2.0\n---\nnode: a\n", -EINVAL,
	  "t.yaml:1:1: YAML syntax error:", "incompatible YAML document" },
	{ "@node: a\n", -EINVAL, "t.yaml:1:1: YAML syntax error:", "" },

	/* Not UTF-8 text (libyaml's reader; the position is where the bad byte is). */
	{ "node: \xff\xfe\n", -EINVAL,
	  "t.yaml:1:7: YAML syntax error: invalid leading UTF-8 octet (0xff)",
	  "must be UTF-8 text" },
	{ "xdp:\n  mode: \xe9t\xe9\n", -EINVAL,
	  "t.yaml:2:10: YAML syntax error: invalid trailing UTF-8 octet", "UTF-8" },
	{ "node: \x80\n", -EINVAL,
	  "t.yaml:1:7: YAML syntax error: invalid leading UTF-8 octet (0x80)", "" },
	{ "node: \xc0\xaf\n", -EINVAL, "t.yaml:1:7: YAML syntax error:", "UTF-8" }, /* overlong */
	{ "node: \xed\xa0\x80\n", -EINVAL, "t.yaml:1:7: YAML syntax error:", "" }, /* surrogate */
	{ "node: a\xe2\x82", -EINVAL, "t.yaml:1:8: YAML syntax error:", "" }, /* cut at EOF */
	{ "\xff\xfenode: a\n", -EINVAL,
	  "t.yaml:1:1: YAML syntax error: invalid leading UTF-8 octet",
	  "" }, /* a UTF-16 byte order mark is not guessed at */
	{ "node: a\x01\n", -EINVAL,
	  "t.yaml:1:8: YAML syntax error: control characters are not allowed (0x1)", "" },
	{ "node: a\x1b[31m\n", -EINVAL, "t.yaml:1:8: YAML syntax error: control characters", "" },
};

static void test_bad_values(void **state)
{
	for (size_t i = 0; i < ZT_ARRAY_SIZE(bad); i++) {
		struct zt_config c, before;
		char err[1024] = "";
		int r;

		memset(&c, 0xa5, sizeof(c));
		before = c;
		r = load_str(bad[i].yaml, &c, err, sizeof(err));
		if (r >= 0)
			fail_msg("case %zu accepted: %s", i, bad[i].yaml);
		if (!strstr(err, bad[i].want1) || !strstr(err, bad[i].want2))
			fail_msg("case %zu: message '%s' lacks '%s' / '%s'", i, err, bad[i].want1,
				 bad[i].want2);
		if (r != bad[i].r)
			fail_msg("case %zu: returned %d, expected %d (%s)", i, r, bad[i].r, err);
		assert_int_equal(strchr(err, '\n'), NULL); /* one line */
		assert_memory_equal(&c, &before, sizeof(c)); /* untouched */
	}
}

/* The kubernetes: section (the watch's keys and the CNI plugin's pending posture). */
static void test_kubernetes(void **state)
{
	static const struct {
		const char *yaml, *want;
	} k8s_bad[] = {
		{ "kubernetes:\n  enabled: yes\n", "kubernetes.enabled: expected true or false" },
		{ "kubernetes:\n  pending_posture: block\n",
		  "kubernetes.pending_posture: expected deny or allow, got 'block'" },
		{ "kubernetes:\n  node_name: Node_1\n", "kubernetes.node_name: expected" },
		{ "kubernetes:\n  node_name: -node\n", "kubernetes.node_name" },
		{ "kubernetes:\n  node_name: a..b\n", "kubernetes.node_name" },
		{ "kubernetes:\n  kubeconfig: relative/kubeconfig\n",
		  "kubernetes.kubeconfig: expected an absolute file path" },
		{ "kubernetes:\n  watch: pods\n", "kubernetes" },
	};
	struct zt_config c;
	char err[1024], node[ZT_K8S_NODE_NAME_MAX];

	zt_config_defaults(&c);
	assert_false(c.kubernetes.enabled);
	assert_string_equal(c.kubernetes.kubeconfig, "");
	assert_string_equal(c.kubernetes.node_name, "");
	assert_int_equal(c.kubernetes.pending_posture, ZT_PENDING_DENY);
	assert_string_equal(zt_pending_posture_name(c.kubernetes.pending_posture), "deny");
	assert_int_equal(load_str("kubernetes:\n"
				  "  enabled: true\n"
				  "  kubeconfig: \"\"\n"
				  "  node_name: \"\"\n"
				  "  pending_posture: deny\n",
				  &c, err, sizeof(err)),
			 0);
	assert_true(c.kubernetes.enabled);
	assert_string_equal(c.kubernetes.kubeconfig, "");
	assert_int_equal(load_str("kubernetes:\n"
				  "  enabled: false\n"
				  "  kubeconfig: /etc/ztagent/kubeconfig\n"
				  "  node_name: worker-1.example\n"
				  "  pending_posture: allow\n",
				  &c, err, sizeof(err)),
			 0);
	assert_false(c.kubernetes.enabled);
	assert_string_equal(c.kubernetes.kubeconfig, "/etc/ztagent/kubeconfig");
	assert_string_equal(c.kubernetes.node_name, "worker-1.example");
	assert_int_equal(c.kubernetes.pending_posture, ZT_PENDING_ALLOW);
	/* node_name wins over $NODE_NAME, which wins over the host name. */
	setenv("NODE_NAME", "from-env", 1);
	assert_int_equal(zt_config_k8s_node(&c, node, sizeof(node)), 0);
	assert_string_equal(node, "worker-1.example");
	c.kubernetes.node_name[0] = '\0';
	assert_int_equal(zt_config_k8s_node(&c, node, sizeof(node)), 0);
	assert_string_equal(node, "from-env");
	setenv("NODE_NAME", "Not A Name", 1);
	if (zt_config_k8s_node(&c, node, sizeof(node)) == 0)
		assert_string_not_equal(node, "Not A Name");
	unsetenv("NODE_NAME");
	for (size_t i = 0; i < ZT_ARRAY_SIZE(k8s_bad); i++) {
		err[0] = '\0';
		if (load_str(k8s_bad[i].yaml, &c, err, sizeof(err)) >= 0)
			fail_msg("case %zu accepted: %s", i, k8s_bad[i].yaml);
		if (!strstr(err, k8s_bad[i].want))
			fail_msg("case %zu: '%s' lacks '%s'", i, err, k8s_bad[i].want);
	}
}

/* A deterministic stream of bytes, for garbage that reproduces. */
static uint32_t lcg(uint32_t *s)
{
	*s = *s * 1103515245u + 12345u;
	return *s >> 16;
}

static void expect_refused(const char *buf, size_t len, const char *name, int want_r)
{
	struct zt_config c, before;
	char err[1024] = "";
	int r;

	memset(&c, 0x5a, sizeof(c));
	before = c;
	r = zt_config_load_buf(buf, len, name, &c, err, sizeof(err));
	if (r >= 0 || (want_r && r != want_r))
		fail_msg("%s: returned %d (%s)", name, r, err);
	if (strncmp(err, name, strlen(name)) || err[strlen(name)] != ':')
		fail_msg("%s: message does not start with the name: %s", name, err);
	assert_true(strlen(err) < 400); /* whatever the input, the message stays short */
	assert_null(strchr(err, '\n'));
	assert_memory_equal(&c, &before, sizeof(c));
}

static void test_garbage(void **state)
{
	char *buf = malloc(8192);

	assert_non_null(buf);
	/* Random bytes: refused with a message, never a crash, never accepted. */
	for (uint32_t seed = 1; seed <= 200; seed++) {
		uint32_t s = seed;
		size_t len = 1 + lcg(&s) % 8192;

		for (size_t i = 0; i < len; i++)
			buf[i] = (char)(1 + lcg(&s) % 255);
		expect_refused(buf, len, "bin.yaml", 0);
	}
	/* Random YAML punctuation: same. */
	for (uint32_t seed = 1; seed <= 200; seed++) {
		static const char alphabet[] = "[]{}:,-?&*!|>'\"%@` \n\t#abc.1";
		uint32_t s = seed;
		size_t len = 1 + lcg(&s) % 2048;
		struct zt_config c;
		char err[1024];
		int r;

		for (size_t i = 0; i < len; i++)
			buf[i] = alphabet[lcg(&s) % (sizeof(alphabet) - 1)];
		/* Might parse (e.g. all comments); must never crash or leak, and explain itself. */
		err[0] = '\0';
		r = zt_config_load_buf(buf, len, "punct.yaml", &c, err, sizeof(err));
		if (r < 0 && strncmp(err, "punct.yaml:", 11))
			fail_msg("no position: %s", err);
	}
	free(buf);
}

static void test_nul_bytes(void **state)
{
	char err[256];
	struct zt_config c;

	expect_refused("node: a\0b\n", 10, "nul.yaml", -EINVAL);
	assert_int_equal(zt_config_load_buf("node: a\0b\n", 10, "nul.yaml", &c, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "nul.yaml:1:8: NUL byte at offset 7"));
	assert_int_equal(zt_config_load_buf("xdp:\n  mode: native\n\0", 21, "nul.yaml", &c, err,
					    sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "nul.yaml:3:1: NUL byte at offset 20"));
	/* UTF-16 text is full of NULs. */
	expect_refused("n\0o\0d\0e\0:\0 \0a\0\n\0", 16, "utf16.yaml", -EINVAL);
	expect_refused("\xff\xfen\0o\0d\0e\0", 10, "utf16bom.yaml", -EINVAL);
	expect_refused("\0", 1, "nul.yaml", -EINVAL);
}

/*
 * A "\0" escape puts a NUL inside a quoted value; every setter reads a C
 * string, so node: "web\0-evil" was accepted as "web". Refused now, for
 * values of every kind and for keys, naming line and column.
 */
static void test_nul_escapes(void **state)
{
	static const struct {
		const char *yaml;
		const char *where;
	} cases[] = {
		{ "node: \"web\\0-evil\"\n",
		  "esc.yaml:1:7: a NUL byte (\\0) at byte 3 of a value" },
		{ "xdp:\n  interfaces: [\"eth0\\0x\"]\n", "esc.yaml:2:16:" },
		{ "database:\n  url: \"host=a\\x00 dbname=b\"\n", "esc.yaml:2:8:" },
		{ "state_dir: \"/var/lib/zt\\u0000/x\"\n", "esc.yaml:1:12:" },
		{ "log_level: \"info\\0\"\n", "esc.yaml:1:12:" },
		{ "\"node\\0\": web\n", "esc.yaml:1:1:" },
		{ "xdp:\n  mode: \"native\\0\"\n", "esc.yaml:2:9:" },
	};
	struct zt_config c;
	char err[512];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		expect_refused(cases[i].yaml, strlen(cases[i].yaml), "esc.yaml", -EINVAL);
		assert_int_equal(zt_config_load_buf(cases[i].yaml, strlen(cases[i].yaml),
						    "esc.yaml", &c, err, sizeof(err)),
				 -EINVAL);
		if (!strstr(err, cases[i].where))
			fail_msg("case %zu: %s", i, err);
	}
	/* The same values without the escape are fine. */
	assert_int_equal(load_str("node: \"web-evil\"\n", &c, err, sizeof(err)), 0);
	assert_string_equal(c.node, "web-evil");
}

static char *repeat(const char *head, char ch, size_t n, const char *tail)
{
	size_t hl = strlen(head), tl = strlen(tail);
	char *s = malloc(hl + n + tl + 1);

	assert_non_null(s);
	memcpy(s, head, hl);
	memset(s + hl, ch, n);
	memcpy(s + hl + n, tail, tl + 1);
	return s;
}

static void test_deep_nesting(void **state)
{
	static const struct {
		const char *head;
		char ch;
		const char *want;
	} t[] = {
		{ "", '[', "deep.yaml:1:1: expected a mapping of keys at the top" },
		{ "node: ", '[', "deep.yaml:1:7: node: expected a single value" },
		{ "node: ", '{', "deep.yaml:1:7: node: expected a single value" },
		{ "xdp:\n  interfaces: ", '[',
		  "deep.yaml:2:16: xdp.interfaces: expected a list of values" },
		{ "xdp: ", '{', "deep.yaml:1:7: xdp: expected a key name, got a mapping" },
		{ "? ", '[', "deep.yaml:1:3: expected a key name, got a list" },
		{ "", '-', "deep.yaml:1:" },
	};

	for (size_t i = 0; i < ZT_ARRAY_SIZE(t); i++) {
		char *s = repeat(t[i].head, t[i].ch, 10000, "\n");
		struct zt_config c;
		char err[512];

		if (t[i].ch == '-') {
			/* 10000 levels of "- - - ...": a block sequence, nested. */
			free(s);
			s = malloc(20001 + 2);
			for (size_t j = 0; j < 10000; j++)
				memcpy(s + 2 * j, "- ", 2);
			strcpy(s + 20000, "a\n");
		}
		assert_true(zt_config_load_buf(s, strlen(s), "deep.yaml", &c, err, sizeof(err)) <
			    0);
		if (!strstr(err, t[i].want))
			fail_msg("case %zu: %s", i, err);
		expect_refused(s, strlen(s), "deep.yaml", -EINVAL);
		free(s);
	}
	/* Closed brackets, 1 MiB worth: still one quick refusal. */
	{
		char *s = malloc(1u << 20);

		memset(s, '[', 1u << 19);
		memset(s + (1u << 19), ']', 1u << 19);
		expect_refused(s, 1u << 20, "deep.yaml", -EINVAL);
		free(s);
	}
}

static void test_huge_scalars(void **state)
{
	char err[512];
	struct zt_config c;
	char *s;

	/* A 512 KiB value: refused, the message quotes only its start. */
	s = repeat("node: ", 'x', 512 * 1024, "\n");
	expect_refused(s, strlen(s), "big.yaml", -EINVAL);
	assert_true(zt_config_load_buf(s, strlen(s), "big.yaml", &c, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "big.yaml:1:7: node: expected a name"));
	assert_non_null(strstr(err, "got 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...'"));
	free(s);
	/* A 1000-byte key, and a 512 KiB one (past YAML's 1024 for an implicit key). */
	s = repeat("", 'k', 1000, ": 1\n");
	expect_refused(s, strlen(s), "big.yaml", -EINVAL);
	assert_true(zt_config_load_buf(s, strlen(s), "big.yaml", &c, err, sizeof(err)) < 0);
	assert_non_null(strstr(
		err, "big.yaml:1:1: unknown key 'kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk...'"));
	free(s);
	s = repeat("", 'k', 512 * 1024, ": 1\n");
	expect_refused(s, strlen(s), "big.yaml", -EINVAL);
	assert_true(zt_config_load_buf(s, strlen(s), "big.yaml", &c, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "big.yaml:1:1: expected a mapping of keys at the top"));
	free(s);
	/* A 512 KiB path. */
	s = repeat("bpffs: /", 'p', 512 * 1024, "\n");
	expect_refused(s, strlen(s), "big.yaml", -EINVAL);
	free(s);
	/* A long number. */
	s = repeat("xdp:\n  event_rate: ", '9', 100000, "\n");
	expect_refused(s, strlen(s), "big.yaml", -ERANGE);
	free(s);
	/* 100000 interfaces: stops at the limit. */
	{
		size_t n = 100000, o;

		s = malloc(n * 8 + 64);
		o = (size_t)sprintf(s, "xdp:\n  interfaces: [");
		for (size_t i = 0; i < n; i++)
			o += (size_t)sprintf(s + o, "e%zu,", i);
		strcpy(s + o, "]\n");
		expect_refused(s, strlen(s), "many.yaml", -E2BIG);
		free(s);
	}
}

static void test_size_limit(void **state)
{
	const size_t mib = 1u << 20;
	struct zt_config c;
	char err[512];
	char *s = malloc(2 * mib);

	assert_non_null(s);
	/* Exactly 1 MiB of comments is a valid (empty) configuration... */
	memset(s, '#', mib);
	s[mib - 1] = '\n';
	assert_int_equal(zt_config_load_buf(s, mib, "max.yaml", &c, err, sizeof(err)), 0);
	/* ...one byte more is not, nor is 2 MiB. */
	memset(s, '#', 2 * mib);
	expect_refused(s, mib + 1, "over.yaml", -EFBIG);
	expect_refused(s, 2 * mib, "huge.yaml", -EFBIG);
	assert_int_equal(zt_config_load_buf(s, 2 * mib, "huge.yaml", &c, err, sizeof(err)), -EFBIG);
	assert_non_null(strstr(err, "huge.yaml: the file is 2097152 bytes"));
	assert_non_null(strstr(err, "at most 1048576 bytes"));
	free(s);
}

static void test_small_err_buffer(void **state)
{
	struct zt_config c;
	char err[16];

	memset(err, 'Z', sizeof(err));
	assert_int_equal(zt_config_load_buf("xdp:\n  mode: fast\n", 18, "a-long-file-name.yaml", &c,
					    err, 10),
			 -EINVAL);
	assert_int_equal(strlen(err), 9); /* truncated, terminated, nothing past the buffer */
	assert_int_equal(err[10], 'Z');
	assert_int_equal(zt_config_load_buf("xdp:\n  mode: fast\n", 18, "t.yaml", &c, NULL, 0),
			 -EINVAL);
	assert_int_equal(zt_config_load_buf("node: a\0", 8, "t.yaml", &c, NULL, 0), -EINVAL);
	assert_int_equal(zt_config_load_buf(NULL, 5, "t.yaml", &c, err, sizeof(err)), -EINVAL);
}

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static void test_files(void **state)
{
	char dir[] = "/tmp/zt-config-XXXXXX", path[PATH_MAX], err[1024], want[PATH_MAX + 64];
	struct zt_config c, before;
	char *big;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/ztagent.yaml", dir);

	/* A good file records its path. */
	write_file(path, "node: from-file\nxdp:\n  mode: generic\n", 37);
	assert_int_equal(zt_config_load(path, &c, err, sizeof(err)), 0);
	assert_string_equal(c.path, path);
	assert_string_equal(c.node, "from-file");
	assert_int_equal(c.xdp.mode, ZT_XDP_GENERIC);

	/* A bad one names the path, line and column. */
	write_file(path, "xdp:\n  mode: slow\n", 18);
	memset(&c, 0xa5, sizeof(c));
	before = c;
	assert_int_equal(zt_config_load(path, &c, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want),
		 "%s:2:9: xdp.mode: expected native, generic, auto or tc, got 'slow'", path);
	assert_string_equal(err, want);
	assert_memory_equal(&c, &before, sizeof(c));

	/* An empty file is all defaults. */
	write_file(path, "", 0);
	assert_int_equal(zt_config_load(path, &c, err, sizeof(err)), 0);
	assert_int_equal(c.xdp.blocklist_max, 2097152);
	assert_string_equal(c.path, path);

	/* Over 1 MiB on disk: -EFBIG before reading it. */
	big = malloc(2u << 20);
	memset(big, '#', 2u << 20);
	write_file(path, big, 2u << 20);
	free(big);
	assert_int_equal(zt_config_load(path, &c, err, sizeof(err)), -EFBIG);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "at most 1048576 bytes"));

	/* NUL bytes on disk. */
	write_file(path, "node: a\0\n", 9);
	assert_int_equal(zt_config_load(path, &c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, ":1:8: NUL byte"));

	/* Missing: the path and strerror. */
	unlink(path);
	memset(&c, 0xa5, sizeof(c));
	assert_int_equal(zt_config_load(path, &c, err, sizeof(err)), -ENOENT);
	snprintf(want, sizeof(want), "%s: cannot open: No such file or directory", path);
	assert_string_equal(err, want);
	assert_memory_equal(&c, &before, sizeof(c));

	/* A directory, and a FIFO (which must not block). */
	assert_int_equal(zt_config_load(dir, &c, err, sizeof(err)), -EISDIR);
	assert_non_null(strstr(err, "not a regular file"));
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(zt_config_load(path, &c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not a regular file"));
	unlink(path);

	/* Names that cannot be files. */
	assert_int_equal(zt_config_load("", &c, err, sizeof(err)), -EINVAL);
	assert_int_equal(zt_config_load(NULL, &c, err, sizeof(err)), -EINVAL);
	big = repeat("/", 'x', PATH_MAX + 10, "");
	assert_int_equal(zt_config_load(big, &c, err, sizeof(err)), -ENAMETOOLONG);
	free(big);
	assert_memory_equal(&c, &before, sizeof(c));
	assert_int_equal(rmdir(dir), 0);
}

static void diff_key(void *ctx, const char *key)
{
	char *buf = ctx;

	strcat(buf, key);
	strcat(buf, " ");
}

/* zt_config_diff: what SIGHUP compares (src/agent/daemon_reload.c). */
static void test_diff(void **state)
{
	static const char base[] = "log_level: info\n"
				   "xdp: {interfaces: [eth0, eth1], mode: native}\n"
				   "detection: {protected: [10.0.0.0/8, 2001:db8::/32]}\n"
				   "feeds: [{name: a, url: /tmp/a.txt, format: cidr}]\n"
				   "mtls: {peers: [\"198.18.2.0/24=198.18.101.1\"]}\n";
	static const char changed[] =
		"log_level: debug\n"
		"xdp: {interfaces: [eth0], mode: native}\n"
		"detection: {protected: [10.0.0.0/8, 2001:db8::/32]}\n"
		"feeds: [{name: a, url: /tmp/a.txt, format: cidr, refresh: 2h}]\n"
		"mtls: {peers: [\"198.18.2.0/24=198.18.101.2\"]}\n"
		"flows: {active_timeout: 30s}\n";
	struct zt_config *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
	char err[512], keys[512] = "";

	(void)state;
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(load_str(base, a, err, sizeof(err)), 0);
	assert_int_equal(load_str(base, b, err, sizeof(err)), 0);
	/* The same file twice: nothing differs (no padding or leftovers compared). */
	assert_int_equal(zt_config_diff(a, b, diff_key, keys), 0);
	assert_string_equal(keys, "");
	assert_int_equal(load_str(changed, b, err, sizeof(err)), 0);
	assert_int_equal(zt_config_diff(a, b, diff_key, keys), 5);
	assert_string_equal(keys,
			    "log_level xdp.interfaces flows.active_timeout feeds mtls.peers ");
	assert_int_equal(zt_config_diff(b, a, NULL, NULL), 5);
	free(a);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_forms),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_iface_count),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_nul_bytes),
		cmocka_unit_test(test_nul_escapes),
		cmocka_unit_test(test_deep_nesting),
		cmocka_unit_test(test_huge_scalars),
		cmocka_unit_test(test_size_limit),
		cmocka_unit_test(test_small_err_buffer),
		cmocka_unit_test(test_files),
		cmocka_unit_test(test_feature_log),
		cmocka_unit_test(test_kubernetes),
		cmocka_unit_test(test_ratelimit),
		cmocka_unit_test(test_drift_cpu),
		cmocka_unit_test(test_diff),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
