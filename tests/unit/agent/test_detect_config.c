// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests: the detection, response, forensics and ratelimit keys. The
 * issue's contract block parses to exactly its values; the defaults are
 * the documented ones; wrong values are refused with file:line:column,
 * the key and what was expected, including keys that only make sense
 * together (theta1 below theta0, alpha below beta, max_ttl above
 * block_ttl).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "agent/config.h"
#include "ztagent.h"

#define SEC 1000000000ULL

static int load(const char *y, struct zt_config *c, char *err, size_t n)
{
	return zt_config_load_buf(y, strlen(y), "t.yaml", c, err, n);
}

static void test_contract(void **state)
{
	static const char y[] =
		"detection:\n"
		"  model: /var/lib/ztagent/model.cbor     # absent: detectors only\n"
		"  target_fpr: 0.001\n"
		"  protected: [10.96.0.0/12]              # never blocked\n"
		"response:\n"
		"  mode: block                            # block | alert | off\n"
		"  block_ttl: 10m                         # doubled for a source that returns\n"
		"  detectors: {scan: block, flood: block, bruteforce: block, slowconn: block, "
		"exfiltration: alert, model: alert}\n"
		"forensics:\n"
		"  dir: /var/lib/ztagent/pcap\n"
		"  max_bytes: 1GiB\n"
		"ratelimit:                               # per source per second, in XDP\n"
		"  syn: 2000\n"
		"  udp: 20000\n"
		"  icmp: 500\n";
	struct zt_config *c = malloc(sizeof(*c));
	char err[512], s[64];

	assert_int_equal(load(y, c, err, sizeof(err)), 0);
	assert_string_equal(c->detection.model, "/var/lib/ztagent/model.cbor");
	assert_int_equal(c->detection.target_fpr_ppm, 1000);
	assert_int_equal(c->detection.n_protected, 1);
	zt_cidr_format(&c->detection.protected_cidrs[0], s, sizeof(s));
	assert_string_equal(s, "10.96.0.0/12");
	assert_int_equal(c->response.mode, ZT_RESPONSE_BLOCK);
	assert_int_equal(c->response.block_ttl_ns, 600 * SEC);
	assert_int_equal(c->response.detectors[ZT_DET_SCAN], ZT_RESPONSE_BLOCK);
	assert_int_equal(c->response.detectors[ZT_DET_FLOOD], ZT_RESPONSE_BLOCK);
	assert_int_equal(c->response.detectors[ZT_DET_BRUTEFORCE], ZT_RESPONSE_BLOCK);
	assert_int_equal(c->response.detectors[ZT_DET_SLOWCONN], ZT_RESPONSE_BLOCK);
	assert_int_equal(c->response.detectors[ZT_DET_EXFILTRATION], ZT_RESPONSE_ALERT);
	assert_int_equal(c->response.detectors[ZT_DET_MODEL], ZT_RESPONSE_ALERT);
	assert_int_equal(c->response.endpoints, ZT_RESPONSE_ALERT);
	assert_string_equal(c->forensics.dir, "/var/lib/ztagent/pcap");
	assert_int_equal(c->forensics.max_bytes, 1ULL << 30);
	assert_int_equal(c->ratelimit.src[ZT_RL_SYN], 2000);
	assert_int_equal(c->ratelimit.src[ZT_RL_UDP], 20000);
	assert_int_equal(c->ratelimit.src[ZT_RL_ICMP], 500);
	free(c);
}

static void test_defaults_and_extras(void **state)
{
	static const char y[] =
		"detection:\n"
		"  protected: [10.96.0.0/12, 2001:db8::/32, 192.0.2.1]\n"
		"  sweep_interval: 500ms\n"
		"  realtime_priority: 5\n"
		"  scan: {theta0: 0.9, theta1: 0.1, alpha: 0.001, beta: 0.999, "
		"probe_timeout: 3s, max_sources: 1000, brake: 10}\n"
		"  flood: {window: 50ms, syn: 5000, dst_factor: 20, out_of_state: 0}\n"
		"  bruteforce: {min_attempts: 15, window: 2m, max_duration: 5s}\n"
		"  slowconn: {min_conns: 32, min_age: 2s, max_rate: 100}\n"
		"  exfiltration: {interval: 30s, min_bytes: 16MiB, "
		"new_dest_bytes: 64MiB, warmup: 20}\n"
		"response:\n"
		"  mode: alert\n"
		"  max_ttl: 12h\n"
		"  detectors: {scan: off}\n"
		"  endpoints: block\n"
		"  incident_update: 2s\n"
		"  incident_idle: 30m\n"
		"  denial_window: 5s\n"
		"forensics: {file_bytes: 8MiB, max_files: 50, snaplen: 128, rate: 100}\n"
		"ratelimit: {all: 100000}\n";
	struct zt_config *c = malloc(sizeof(*c)), *d = malloc(sizeof(*d));
	char err[512], s[64];

	zt_config_defaults(d);
	assert_int_equal(d->detection.target_fpr_ppm, 1000);
	assert_int_equal(d->detection.n_protected, 0);
	assert_int_equal(d->detection.realtime_priority, 1);
	assert_string_equal(d->detection.model, "");
	assert_int_equal(d->detection.scan.theta0_ppm, 800000);
	assert_int_equal(d->detection.scan.max_sources, 65536);
	assert_int_equal(d->detection.scan.brake, 6);
	assert_int_equal(d->detection.flood.window_ns, 100 * SEC / 1000);
	assert_int_equal(d->detection.flood.out_of_state, 5000);
	assert_int_equal(d->response.max_ttl_ns, 86400 * SEC);
	assert_int_equal(d->response.detectors[ZT_DET_EXFILTRATION], ZT_RESPONSE_ALERT);
	assert_string_equal(d->forensics.dir, "/var/lib/ztagent/pcap");
	assert_int_equal(d->ratelimit.src[ZT_RL_ALL], 0);
	assert_int_equal(load(y, c, err, sizeof(err)), 0);
	assert_int_equal(c->detection.n_protected, 3);
	zt_cidr_format(&c->detection.protected_cidrs[1], s, sizeof(s));
	assert_string_equal(s, "2001:db8::/32");
	zt_cidr_format(&c->detection.protected_cidrs[2], s, sizeof(s));
	assert_string_equal(s, "192.0.2.1/32");
	assert_int_equal(c->detection.sweep_interval_ns, 500 * SEC / 1000);
	assert_int_equal(c->detection.realtime_priority, 5);
	assert_int_equal(c->detection.scan.beta_ppm, 999000);
	assert_int_equal(c->detection.scan.probe_timeout_ns, 3 * SEC);
	assert_int_equal(c->detection.scan.max_sources, 1000);
	assert_int_equal(c->detection.scan.brake, 10);
	assert_int_equal(c->detection.flood.syn, 5000);
	assert_int_equal(c->detection.flood.udp, 0); /* follows ratelimit.udp */
	assert_int_equal(c->detection.flood.dst_factor, 20);
	assert_int_equal(c->detection.flood.out_of_state, 0); /* off */
	assert_int_equal(c->detection.bruteforce.window_ns, 120 * SEC);
	assert_int_equal(c->detection.slowconn.min_age_ns, 2 * SEC);
	assert_int_equal(c->detection.exfiltration.new_dest_bytes, 64ULL << 20);
	assert_int_equal(c->response.mode, ZT_RESPONSE_ALERT);
	assert_int_equal(c->response.detectors[ZT_DET_SCAN], ZT_RESPONSE_OFF);
	assert_int_equal(c->response.endpoints, ZT_RESPONSE_BLOCK);
	assert_int_equal(c->response.detectors[ZT_DET_FLOOD], ZT_RESPONSE_BLOCK);
	assert_int_equal(c->response.incident_idle_ns, 1800 * SEC);
	assert_int_equal(c->forensics.max_files, 50);
	assert_int_equal(c->ratelimit.src[ZT_RL_ALL], 100000);
	assert_int_equal(c->ratelimit.src[ZT_RL_SYN], 2000); /* untouched */
	free(c);
	free(d);
}

/* Captures follow state_dir unless forensics.dir places them elsewhere. */
static void test_forensics_dir_follows_state_dir(void **state)
{
	struct zt_config *c = malloc(sizeof(*c));
	char err[512];

	(void)state;
	assert_non_null(c);
	assert_int_equal(load("node: n\n", c, err, sizeof(err)), 0);
	assert_string_equal(c->forensics.dir, "/var/lib/ztagent/pcap");
	assert_int_equal(load("state_dir: /tmp/zt-a\n", c, err, sizeof(err)), 0);
	assert_string_equal(c->forensics.dir, "/tmp/zt-a/pcap");
	assert_int_equal(
		load("forensics: {dir: /srv/pcap}\nstate_dir: /tmp/zt-a\n", c, err, sizeof(err)),
		0);
	assert_string_equal(c->forensics.dir, "/srv/pcap");
	assert_int_equal(load("state_dir: /tmp/zt-a\nforensics:\n  dir: /var/lib/ztagent/pcap\n", c,
			      err, sizeof(err)),
			 0);
	assert_string_equal(c->forensics.dir, "/var/lib/ztagent/pcap");
	free(c);
}

static void test_refused(void **state)
{
	static const struct {
		const char *yaml;
		const char *want; /* in the message */
	} t[] = {
		{ "detection:\n  target_fpr: 2\n",
		  "t.yaml:2:15: detection.target_fpr: expected a fraction" },
		{ "detection:\n  target_fpr: 0\n", "detection.target_fpr: must be above 0" },
		{ "detection:\n  protected: [10.96.0.1/12]\n",
		  "has bits set past its prefix length" },
		{ "detection:\n  protected: [cluster]\n",
		  "t.yaml:2:15: detection.protected: expected an IPv4 or IPv6" },
		{ "detection:\n  protected: 10.96.0.0/12\n",
		  "detection.protected: expected a list" },
		{ "detection:\n  model: model.cbor\n",
		  "detection.model: expected an absolute file path" },
		{ "detection:\n  scan:\n    theta1: 0.9\n",
		  "t.yaml:3:5: detection.scan.theta1: a scanner's success probability (0.9) must be above 0 and below" },
		{ "detection:\n  scan: {alpha: 0.5, beta: 0.4}\n",
		  "detection.scan.alpha: the false-positive probability" },
		{ "detection:\n  bruteforce: {min_attempts: 100}\n",
		  "detection.bruteforce.min_attempts: expected a whole number from 2 to 64" },
		{ "detection:\n  scan: {gamma: 1}\n", "unknown key 'detection.scan.gamma'" },
		{ "detection:\n  scan: {brake: 70000}\n",
		  "detection.scan.brake: expected a whole number from 0 to 65535" },
		{ "detection:\n  scan: {max_sources: 8}\n",
		  "detection.scan.max_sources: expected a whole number from 16 to 16777216" },
		{ "detection:\n  sweep_interval: 10ms\n",
		  "detection.sweep_interval: expected a duration from 100ms" },
		{ "detection:\n  realtime_priority: 100\n",
		  "detection.realtime_priority: expected a whole number from 0 to 99" },
		{ "detection:\n  realtime_priority: high\n",
		  "detection.realtime_priority: expected a whole number" },
		{ "response:\n  mode: kill\n",
		  "response.mode: expected off, alert or block, got 'kill'" },
		{ "response:\n  detectors: {scan: maybe}\n",
		  "response.detectors.scan: expected off, alert or block" },
		{ "response:\n  endpoints: off\n",
		  "response.endpoints: expected alert or block, got 'off'" },
		{ "response:\n  detectors: {ddos: block}\n",
		  "unknown key 'response.detectors.ddos'" },
		{ "response:\n  block_ttl: 2h\n  max_ttl: 1h\n",
		  "response.max_ttl: shorter than response.block_ttl" },
		{ "forensics:\n  dir: pcap\n",
		  "forensics.dir: expected an absolute directory path" },
		{ "forensics:\n  max_bytes: 1KiB\n",
		  "forensics.max_bytes: expected a size from 1MiB" },
		{ "forensics:\n  max_bytes: 1MiB\n  file_bytes: 2MiB\n",
		  "forensics.file_bytes: larger than forensics.max_bytes" },
		{ "ratelimit:\n  syn: -1\n", "ratelimit.syn: expected a whole number" },
		{ "ratelimit:\n  synn: 5\n", "did you mean 'ratelimit.syn'" },
	};
	struct zt_config *c = malloc(sizeof(*c));

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char err[512] = "";

		zt_config_defaults(c);
		c->ratelimit.src[ZT_RL_SYN] = 4242;
		if (load(t[i].yaml, c, err, sizeof(err)) == 0)
			fail_msg("accepted: %s", t[i].yaml);
		if (!strstr(err, t[i].want))
			fail_msg("case %zu: message '%s' lacks '%s'", i, err, t[i].want);
		/* A refused file changes nothing. */
		assert_int_equal(c->ratelimit.src[ZT_RL_SYN], 4242);
	}
	free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_contract),
		cmocka_unit_test(test_defaults_and_extras),
		cmocka_unit_test(test_forensics_dir_follows_state_dir),
		cmocka_unit_test(test_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
