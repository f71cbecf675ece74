// SPDX-License-Identifier: GPL-2.0-only
/* Unit tests: the configuration file, valid and hostile. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"
#include "util.h"
#include "ztagent.h"

static void test_defaults(void **state)
{
	struct zt_config c;
	char err[512];

	assert_int_equal(zt_config_load_buf("", 0, "empty.yaml", &c, err, sizeof(err)), 0);
	assert_string_equal(c.bpffs, ZT_DEFAULT_BPFFS);
	assert_string_equal(c.api_socket, ZT_DEFAULT_API_SOCKET);
	assert_int_equal(c.log_level, ZT_LOG_INFO);
	assert_int_equal(c.xdp.n_interfaces, 0);
	assert_int_equal(c.xdp.mode, ZT_XDP_NATIVE);
	assert_true(c.xdp.malformed_drop);
	assert_int_equal(c.xdp.blocklist_max, 2097152);
	assert_int_equal(c.xdp.ringbuf_bytes, 4u << 20);
	assert_int_equal(c.xdp.expiry_interval_ns, 1000000000ULL);
	assert_true(strlen(c.node) > 0);
	/* A comment-only file and "xdp:" with nothing under it are defaults too. */
	assert_int_equal(zt_config_load_buf("# nothing\n", 10, "c.yaml", &c, err, sizeof(err)), 0);
	assert_int_equal(zt_config_load_buf("xdp:\n", 5, "c.yaml", &c, err, sizeof(err)), 0);
}

static void test_full(void **state)
{
	static const char y[] = "node: node-1\n"
				"bpffs: /sys/fs/bpf/zt/\n"
				"api_socket: /run/zt/api.sock\n"
				"log_level: debug\n"
				"xdp:\n"
				"  interfaces: [eth0, eth1]\n"
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

	assert_int_equal(zt_config_load_buf(y, sizeof(y) - 1, "full.yaml", &c, err, sizeof(err)),
			 0);
	assert_string_equal(c.node, "node-1");
	assert_string_equal(c.bpffs, "/sys/fs/bpf/zt");
	assert_string_equal(c.api_socket, "/run/zt/api.sock");
	assert_int_equal(c.log_level, ZT_LOG_DEBUG);
	assert_int_equal(c.xdp.n_interfaces, 2);
	assert_string_equal(c.xdp.interfaces[1], "eth1");
	assert_int_equal(c.xdp.mode, ZT_XDP_GENERIC);
	assert_false(c.xdp.malformed_drop);
	assert_int_equal(c.xdp.blocklist_max, 1048576);
	assert_int_equal(c.xdp.allowlist_max, 1024);
	assert_int_equal(c.xdp.event_sample, 10);
	assert_int_equal(c.xdp.event_rate, 0);
	assert_int_equal(c.xdp.ringbuf_bytes, 1u << 20);
	assert_int_equal(c.xdp.expiry_interval_ns, 500000000ULL);

	/* Block-style list. */
	static const char y2[] = "xdp:\n  interfaces:\n    - eth0\n    - bond0.100\n";
	assert_int_equal(zt_config_load_buf(y2, sizeof(y2) - 1, "b.yaml", &c, err, sizeof(err)), 0);
	assert_int_equal(c.xdp.n_interfaces, 2);
	assert_string_equal(c.xdp.interfaces[1], "bond0.100");
}

/* Each bad file and substrings its message must contain. */
static const struct {
	const char *yaml;
	const char *want1, *want2;
} bad[] = {
	{ "xdp:\n  mode: fast\n", "bad.yaml:2:9: xdp.mode",
	  "expected native or generic, got 'fast'" },
	{ "xdp:\n  mdoe: native\n", "bad.yaml:2:3:", "unknown key 'xdp.mdoe'" },
	{ "nodes: x\n", "bad.yaml:1:1:", "unknown key 'nodes'" },
	{ "node: a\nnode: b\n", "bad.yaml:2:1: node", "duplicate key" },
	{ "node: 'has space'\n", "bad.yaml:1:7: node", "expected a name" },
	{ "node: ''\n", "node", "got ''" },
	{ "bpffs: relative/path\n", "bpffs", "expected an absolute path" },
	{ "api_socket: /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
	  "api_socket", "at most 107 bytes" },
	{ "log_level: loud\n", "log_level", "expected error, warn, info or debug, got 'loud'" },
	{ "xdp:\n  malformed: maybe\n", "xdp.malformed", "expected drop or pass" },
	{ "xdp:\n  blocklist_max: 0\n", "xdp.blocklist_max", "from 1 to 16777216, got '0'" },
	{ "xdp:\n  blocklist_max: 99999999999\n", "xdp.blocklist_max", "got '99999999999'" },
	{ "xdp:\n  blocklist_max: -5\n", "xdp.blocklist_max", "got '-5'" },
	{ "xdp:\n  event_sample: 1.5\n", "xdp.event_sample", "whole number" },
	{ "xdp:\n  ringbuf_bytes: 3000\n", "xdp.ringbuf_bytes", "power of two" },
	{ "xdp:\n  ringbuf_bytes: 3MiB\n", "xdp.ringbuf_bytes", "power of two" },
	{ "xdp:\n  expiry_interval: 10ms\n", "xdp.expiry_interval", "from 100ms to 1h" },
	{ "xdp:\n  expiry_interval: soon\n", "xdp.expiry_interval", "got 'soon'" },
	{ "xdp:\n  interfaces: eth0\n", "xdp.interfaces", "expected a list of interface names" },
	{ "xdp:\n  interfaces: [eth0, eth0]\n", "xdp.interfaces", "'eth0' is listed twice" },
	{ "xdp:\n  interfaces: [averyveryverylongname]\n", "xdp.interfaces", "1 to 15 characters" },
	{ "xdp:\n  interfaces: [[eth0]]\n", "xdp.interfaces", "got a list" },
	{ "xdp: 5\n", "bad.yaml:1:6: xdp", "expected a mapping" },
	{ "node: [a]\n", "node", "expected a value, got a list" },
	{ "- a\n- b\n", "bad.yaml:1:1:", "expected a mapping of keys" },
	{ "just a string\n", "bad.yaml:1:1:", "expected a mapping of keys" },
	{ "node: a\n---\nnode: b\n", "bad.yaml:2:1:", "more than one YAML document" },
	{ "node: &x a\nbpffs: *x\n", "bad.yaml:1:7:", "anchors are not allowed" },
	{ "node: [unclosed\n", "bad.yaml:1:7: node", "expected a value, got a list" },
	{ "node: a: b\n", "bad.yaml:1:8:", "YAML syntax error: mapping values are not allowed" },
	{ "node: \"a\n", "bad.yaml:", "YAML syntax error" },
	{ "xdp:\n\tmode: native\n", "bad.yaml:", "YAML syntax error" },
	{ "node: \xff\xfe\n", "bad.yaml:", "YAML syntax error" },
	{ "xdp:\n  mode: \xe9t\xe9\n", "bad.yaml:", "YAML syntax error" },
};

static void test_bad_values(void **state)
{
	for (size_t i = 0; i < ZT_ARRAY_SIZE(bad); i++) {
		struct zt_config c, before;
		char err[1024] = "";
		int r;

		memset(&c, 0xa5, sizeof(c));
		before = c;
		r = zt_config_load_buf(bad[i].yaml, strlen(bad[i].yaml), "bad.yaml", &c, err,
				       sizeof(err));
		if (r >= 0)
			fail_msg("case %zu accepted: %s", i, bad[i].yaml);
		if (!strstr(err, bad[i].want1) || !strstr(err, bad[i].want2))
			fail_msg("case %zu: message '%s' lacks '%s' / '%s'", i, err, bad[i].want1,
				 bad[i].want2);
		assert_memory_equal(&c, &before, sizeof(c)); /* untouched */
	}
}

static void test_hostile(void **state)
{
	struct zt_config c;
	char err[1024];
	size_t n;
	char *buf;

	/* NUL bytes. */
	assert_int_equal(zt_config_load_buf("node: a\0b\n", 10, "nul.yaml", &c, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "NUL byte at offset 7"));

	/* Binary garbage. */
	buf = malloc(4096);
	for (n = 0; n < 4096; n++)
		buf[n] = (char)((n * 7919 + 13) % 255 + 1);
	assert_true(zt_config_load_buf(buf, 4096, "bin.yaml", &c, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "bin.yaml:"));
	free(buf);

	/* 10000 levels of nesting: refused at the first wrong type, no recursion. */
	n = 10000;
	buf = malloc(n * 2 + 16);
	strcpy(buf, "node: ");
	memset(buf + 6, '[', n);
	memset(buf + 6 + n, ']', n);
	buf[6 + 2 * n] = '\0';
	assert_true(zt_config_load_buf(buf, strlen(buf), "deep.yaml", &c, err, sizeof(err)) < 0);
	free(buf);

	/* A huge scalar inside the limit: refused, the message stays short. */
	n = 512 * 1024;
	buf = malloc(n + 16);
	strcpy(buf, "node: ");
	memset(buf + 6, 'x', n);
	buf[6 + n] = '\0';
	assert_true(zt_config_load_buf(buf, strlen(buf), "big.yaml", &c, err, sizeof(err)) < 0);
	assert_true(strlen(err) < 300);
	free(buf);

	/* Over 1 MiB. */
	n = 2u << 20;
	buf = malloc(n);
	memset(buf, '#', n);
	assert_int_equal(zt_config_load_buf(buf, n, "huge.yaml", &c, err, sizeof(err)), -EFBIG);
	free(buf);
}

static void test_files(void **state)
{
	char path[] = "/tmp/zt-config-XXXXXX", err[1024];
	struct zt_config c;
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, "xdp:\n  mode: slow\n", 18), 18);
	close(fd);
	assert_true(zt_config_load(path, &c, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, ":2:9: xdp.mode"));
	unlink(path);
	assert_int_equal(zt_config_load(path, &c, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "No such file"));
	assert_true(zt_config_load("/tmp", &c, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "not a regular file"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),   cmocka_unit_test(test_full),
		cmocka_unit_test(test_bad_values), cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_files),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
