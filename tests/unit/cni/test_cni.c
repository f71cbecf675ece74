// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests: ztagent-cni's pure part (src/cni/cni.c) and the DEL queue's
 * format (src/seg/cnispool.c): network configurations, prevResult of every
 * supported version (and without a host interface), hostile JSON, CNI_ARGS,
 * the error object.
 */
#include <dirent.h>
#include <errno.h>
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

#include "cni/cni.h"
#include "seg/cnispool.h"

/* Parses a configuration; returns the code (0 on success). */
static int conf(const char *text, bool need_prev, struct zt_cni_conf *c, struct zt_cni_err *e)
{
	int r = zt_cni_conf_parse(text, strlen(text), need_prev, c, e);

	return r < 0 ? -r : 0;
}

/* prevResult of a configuration into p; the code (0 on success). */
static int prev(const char *text, const char *ifname, struct zt_cni_prev *p, struct zt_cni_err *e)
{
	struct zt_cni_conf c;
	int r = conf(text, true, &c, e);

	if (r)
		return r;
	r = zt_cni_prev_parse(c.prev, ifname, p, e);
	zt_cni_conf_free(&c);
	return r < 0 ? -r : 0;
}

static void expect_code(int got, int want, const struct zt_cni_err *e, const char *msg,
			const char *what)
{
	if (got != want || (msg && !strstr(e->msg, msg)))
		fail_msg("%s: code %d msg '%s', want %d '%s'", what, got, e->msg, want,
			 msg ? msg : "");
}

/* ---- prevResult ---- */

/* ptp, CNI 1.0.0: host veth (no sandbox), eth0 in the container, the gateway on the host. */
static const char ptp100[] =
	"{\"cniVersion\":\"1.0.0\",\"name\":\"k8s-pod-network\",\"type\":\"ztagent-cni\","
	"\"socket\":\"/run/zt/api.sock\",\"timeout\":2.5,\"state_dir\":\"/var/lib/zt\","
	"\"runtimeConfig\":{\"portMappings\":[]},"
	"\"prevResult\":{\"cniVersion\":\"1.0.0\","
	"\"interfaces\":[{\"name\":\"veth1a2b3c4d\",\"mac\":\"ee:ee:ee:ee:ee:ee\"},"
	"{\"name\":\"eth0\",\"mac\":\"02:42:c6:12:05:03\",\"sandbox\":\"/var/run/netns/cni-1\"}],"
	"\"ips\":[{\"address\":\"198.18.5.1/32\",\"interface\":0},"
	"{\"address\":\"198.18.5.3/24\",\"gateway\":\"198.18.5.1\",\"interface\":1}],"
	"\"routes\":[{\"dst\":\"0.0.0.0/0\"}],\"dns\":{}}}";

static void test_prev_100(void **state)
{
	struct zt_cni_conf c;
	struct zt_cni_prev p;
	struct zt_cni_err e;
	char addrs[256];
	size_t n;

	assert_int_equal(conf(ptp100, true, &c, &e), 0);
	assert_string_equal(c.version, "1.0.0");
	assert_string_equal(c.name, "k8s-pod-network");
	assert_string_equal(c.socket, "/run/zt/api.sock");
	assert_string_equal(c.state_dir, "/var/lib/zt");
	assert_int_equal(c.timeout_ns, 2500000000ULL);
	/* The result is echoed as the runtime wrote it: its exact bytes. */
	{
		const char *want = strstr(ptp100, "{\"cniVersion\":\"1.0.0\",\"interfaces\"");

		assert_int_equal(c.prev_len, strlen(want) - 1); /* without the closing '}' */
		assert_memory_equal(c.prev_text, want, c.prev_len);
	}
	assert_int_equal(zt_cni_prev_parse(c.prev, "eth0", &p, &e), 0);
	assert_int_equal(p.n_ifs, 2);
	assert_false(p.ifs[0].in_sandbox);
	assert_true(p.ifs[1].in_sandbox);
	assert_int_equal(p.container, 1);
	assert_int_equal(p.n_ips, 2);
	/* The gateway on the host side is not the pod's address. */
	assert_int_equal(zt_cni_prev_addrs(&p, addrs, sizeof(addrs), &n, &e), 0);
	assert_string_equal(addrs, "198.18.5.3");
	assert_int_equal(n, 1);
	zt_cni_conf_free(&c);
}

/* bridge, CNI 0.3.1 and 0.4.0: "version" on ips, a bridge beside the host veth, IPv6. */
static void test_prev_03x_04(void **state)
{
	static const char *const versions[] = { "0.3.0", "0.3.1", "0.4.0" };

	for (size_t i = 0; i < 3; i++) {
		char text[2048], addrs[256];
		struct zt_cni_prev p;
		struct zt_cni_err e;
		size_t n;

		snprintf(
			text, sizeof(text),
			"{\"cniVersion\":\"%s\",\"name\":\"br\",\"prevResult\":{\"cniVersion\":\"%s\","
			"\"interfaces\":[{\"name\":\"cni0\",\"mac\":\"0a:58:c6:12:00:01\"},"
			"{\"name\":\"veth9\",\"mac\":\"0a:58:c6:12:00:02\"},"
			"{\"name\":\"net1\",\"mac\":\"0a:58:c6:12:00:03\",\"sandbox\":\"/proc/42/ns/net\"}],"
			"\"ips\":[{\"version\":\"4\",\"address\":\"198.18.6.4/24\",\"gateway\":\"198.18.6.1\",\"interface\":2},"
			"{\"version\":\"6\",\"address\":\"2001:db8:6::4/64\",\"interface\":2}],"
			"\"routes\":[],\"dns\":{\"nameservers\":[\"198.18.0.53\"]}}}",
			versions[i], versions[i]);
		assert_int_equal(prev(text, "net1", &p, &e), 0);
		assert_int_equal(p.container, 2);
		assert_false(p.ifs[0].in_sandbox);
		assert_false(p.ifs[1].in_sandbox);
		assert_int_equal(zt_cni_prev_addrs(&p, addrs, sizeof(addrs), &n, &e), 0);
		assert_string_equal(addrs, "198.18.6.4,2001:db8:6::4");
		assert_int_equal(n, 2);
		/* Another CNI_IFNAME: not the container's interface, so its ips are not ours. */
		assert_int_equal(prev(text, "eth0", &p, &e), 0);
		assert_int_equal(p.container, -1);
	}
}

/* A primary that reports only the container's side (the host side is found from the netns). */
static void test_prev_no_host(void **state)
{
	struct zt_cni_prev p;
	struct zt_cni_err e;
	char addrs[256];
	size_t n;

	assert_int_equal(
		prev("{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"prevResult\":{"
		     "\"interfaces\":[{\"name\":\"eth0\",\"sandbox\":\"/var/run/netns/p\"}],"
		     "\"ips\":[{\"address\":\"198.18.7.2/32\",\"interface\":0}]}}",
		     "eth0", &p, &e),
		0);
	assert_int_equal(p.n_ifs, 1);
	assert_int_equal(p.container, 0);
	for (size_t i = 0; i < p.n_ifs; i++)
		assert_true(p.ifs[i].in_sandbox); /* no host-side candidate */
	assert_int_equal(zt_cni_prev_addrs(&p, addrs, sizeof(addrs), &n, &e), 0);
	assert_string_equal(addrs, "198.18.7.2");
	/* No interfaces at all, ips without an interface (allowed by the spec): all ours. */
	assert_int_equal(prev("{\"cniVersion\":\"1.0.0\",\"prevResult\":{\"ips\":["
			      "{\"address\":\"198.18.7.2/24\"},{\"address\":\"198.18.7.2/24\"},"
			      "{\"address\":\"2001:db8::7/64\"}]}}",
			      "eth0", &p, &e),
			 0);
	assert_int_equal(p.container, -1);
	assert_int_equal(zt_cni_prev_addrs(&p, addrs, sizeof(addrs), &n, &e), 0);
	assert_string_equal(addrs, "198.18.7.2,2001:db8::7"); /* the duplicate once */
	/* A result without addresses cannot be enforced. */
	assert_int_equal(prev("{\"cniVersion\":\"1.0.0\",\"prevResult\":{\"interfaces\":["
			      "{\"name\":\"eth0\",\"sandbox\":\"/x\"}]}}",
			      "eth0", &p, &e),
			 0);
	expect_code(-zt_cni_prev_addrs(&p, addrs, sizeof(addrs), &n, &e), ZT_CNI_E_CONFIG, &e,
		    "no address for the container's interface", "no ips");
	/* Only host-side addresses: none for the pod either. */
	assert_int_equal(prev("{\"cniVersion\":\"1.0.0\",\"prevResult\":{\"interfaces\":["
			      "{\"name\":\"veth0\"},{\"name\":\"eth0\",\"sandbox\":\"/x\"}],"
			      "\"ips\":[{\"address\":\"198.18.7.1/32\",\"interface\":0}]}}",
			      "eth0", &p, &e),
			 0);
	expect_code(-zt_cni_prev_addrs(&p, addrs, sizeof(addrs), &n, &e), ZT_CNI_E_CONFIG, &e,
		    "no address", "host-only ips");
}

static void test_prev_hostile(void **state)
{
	static const struct {
		const char *prev; /* the prevResult object */
		int code;
		const char *msg;
	} cases[] = {
		{ "{\"interfaces\":{}}", ZT_CNI_E_CONFIG, "interfaces: expected an array" },
		{ "{\"interfaces\":[1]}", ZT_CNI_E_CONFIG, "interfaces[0].name: missing" },
		{ "{\"interfaces\":[{\"name\":7}]}", ZT_CNI_E_CONFIG, "expected a string" },
		{ "{\"interfaces\":[{\"name\":\"averyveryverylongname\"}]}", ZT_CNI_E_CONFIG,
		  "longer than 15 bytes" },
		{ "{\"interfaces\":[{\"name\":\"../etc\"}]}", ZT_CNI_E_CONFIG,
		  "is not an interface name" },
		{ "{\"interfaces\":[{\"name\":\"eth\\u00000\"}]}", ZT_CNI_E_CONFIG, "NUL byte" },
		{ "{\"interfaces\":[{\"name\":\"eth0\",\"sandbox\":[]}]}", ZT_CNI_E_CONFIG,
		  "sandbox: expected a string" },
		{ "{\"ips\":{}}", ZT_CNI_E_CONFIG, "ips: expected an array" },
		{ "{\"ips\":[\"198.18.0.1\"]}", ZT_CNI_E_CONFIG, "ips[0]: expected an object" },
		{ "{\"ips\":[{\"gateway\":\"198.18.0.1\"}]}", ZT_CNI_E_CONFIG,
		  "ips[0].address: missing" },
		{ "{\"ips\":[{\"address\":\"bogus/24\"}]}", ZT_CNI_E_CONFIG,
		  "'bogus' is not an IPv4 or IPv6 address" },
		{ "{\"ips\":[{\"address\":\"198.18.0.300/24\"}]}", ZT_CNI_E_CONFIG,
		  "not an IPv4 or IPv6" },
		{ "{\"interfaces\":[{\"name\":\"eth0\"}],\"ips\":[{\"address\":\"198.18.0.2/24\","
		  "\"interface\":5}]}",
		  ZT_CNI_E_CONFIG, "5 is not an index into interfaces (1 entries)" },
		{ "{\"ips\":[{\"address\":\"198.18.0.2/24\",\"interface\":-1}]}", ZT_CNI_E_CONFIG,
		  "not an index" },
		{ "{\"ips\":[{\"address\":\"198.18.0.2/24\",\"interface\":\"0\"}]}",
		  ZT_CNI_E_CONFIG, "expected an index" },
		{ "{\"ips\":[{\"address\":\"198.18.0.2/24\",\"interface\":1e300}]}",
		  ZT_CNI_E_CONFIG, "expected an index" },
		{ "{\"ip4\":{\"ip\":\"198.18.0.2/24\"}}", ZT_CNI_E_VERSION, "CNI 0.1/0.2 result" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[1024], what[32];
		struct zt_cni_prev p;
		struct zt_cni_err e = { 0 };

		snprintf(text, sizeof(text), "{\"cniVersion\":\"1.0.0\",\"prevResult\":%s}",
			 cases[i].prev);
		snprintf(what, sizeof(what), "case %zu", i);
		expect_code(prev(text, "eth0", &p, &e), cases[i].code, &e, cases[i].msg, what);
	}
	/* Counts: more than ZT_CNI_MAX_IPS entries, more than 16 addresses of the pod. */
	{
		char *text = malloc(1 << 16), addrs[1024];
		struct zt_cni_prev p;
		struct zt_cni_err e;
		size_t o, n;

		o = (size_t)sprintf(text, "{\"cniVersion\":\"1.0.0\",\"prevResult\":{\"ips\":[");
		for (int i = 0; i < ZT_CNI_MAX_IPS + 1; i++)
			o += (size_t)sprintf(text + o, "%s{\"address\":\"198.18.1.%d/24\"}",
					     i ? "," : "", i + 1);
		strcpy(text + o, "]}}");
		expect_code(prev(text, "eth0", &p, &e), ZT_CNI_E_CONFIG, &e, "at most 64",
			    "65 ips");
		o = (size_t)sprintf(text, "{\"cniVersion\":\"1.0.0\",\"prevResult\":{\"ips\":[");
		for (int i = 0; i < 17; i++)
			o += (size_t)sprintf(text + o, "%s{\"address\":\"198.18.1.%d/24\"}",
					     i ? "," : "", i + 1);
		strcpy(text + o, "]}}");
		assert_int_equal(prev(text, "eth0", &p, &e), 0);
		expect_code(-zt_cni_prev_addrs(&p, addrs, sizeof(addrs), &n, &e), ZT_CNI_E_CONFIG,
			    &e, "more than 16 addresses", "17 addresses");
		free(text);
	}
}

/* ---- the configuration ---- */

static void test_conf_hostile(void **state)
{
	static const struct {
		const char *text;
		bool need_prev;
		int code;
		const char *msg;
	} cases[] = {
		{ "", false, ZT_CNI_E_DECODE, "not JSON" },
		{ "   \n", false, ZT_CNI_E_DECODE, "not JSON" },
		{ "nope", false, ZT_CNI_E_DECODE, "not JSON" },
		{ "[1,2]", false, ZT_CNI_E_DECODE, "not a JSON object" },
		{ "{\"cniVersion\":\"1.0.0\"} {}", false, ZT_CNI_E_DECODE, "not JSON" },
		{ "{\"cniVersion\":\"1.0.0\",}", false, ZT_CNI_E_DECODE, "not JSON" },
		{ "{'cniVersion':'1.0.0'}", false, ZT_CNI_E_DECODE, "not JSON" },
		{ "{\"cniVersion\":\"1.0.0\"", false, ZT_CNI_E_DECODE, "not JSON" },
		{ "{\"cniVersion\":\"1.0.0\",\"x\":\"\xff\xfe\"}", false, ZT_CNI_E_DECODE,
		  "not JSON" },
		{ "{}", false, ZT_CNI_E_CONFIG, "cniVersion: missing" },
		{ "{\"cniVersion\":1}", false, ZT_CNI_E_CONFIG, "cniVersion: expected a string" },
		{ "{\"cniVersion\":\"0.2.0\"}", false, ZT_CNI_E_VERSION,
		  "cniVersion 0.2.0 is not supported" },
		{ "{\"cniVersion\":\"1.0.0\"}", true, ZT_CNI_E_CONFIG, "prevResult: missing" },
		{ "{\"cniVersion\":\"1.0.0\",\"prevResult\":null}", true, ZT_CNI_E_CONFIG,
		  "prevResult: missing" },
		{ "{\"cniVersion\":\"1.0.0\",\"prevResult\":[]}", true, ZT_CNI_E_CONFIG,
		  "prevResult: expected an object" },
		{ "{\"cniVersion\":\"1.0.0\",\"socket\":\"run/api.sock\"}", false, ZT_CNI_E_CONFIG,
		  "socket: expected an absolute path" },
		{ "{\"cniVersion\":\"1.0.0\",\"socket\":\"/run/"
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock\"}",
		  false, ZT_CNI_E_CONFIG, "socket: longer than" },
		{ "{\"cniVersion\":\"1.0.0\",\"state_dir\":\"/var/lib/zt/\"}", false,
		  ZT_CNI_E_CONFIG, "state_dir: expected an absolute path" },
		{ "{\"cniVersion\":\"1.0.0\",\"timeout\":0}", false, ZT_CNI_E_CONFIG,
		  "timeout: expected 0.1 to 300 seconds" },
		{ "{\"cniVersion\":\"1.0.0\",\"timeout\":-5}", false, ZT_CNI_E_CONFIG, "timeout" },
		{ "{\"cniVersion\":\"1.0.0\",\"timeout\":\"soon\"}", false, ZT_CNI_E_CONFIG,
		  "timeout: expected seconds" },
		{ "{\"cniVersion\":\"1.0.0\",\"timeout\":\"1h\"}", false, ZT_CNI_E_CONFIG,
		  "timeout" },
		{ "{\"cniVersion\":\"1.0.0\",\"timeout\":true}", false, ZT_CNI_E_CONFIG,
		  "timeout" },
		{ "{\"cniVersion\":\"1.0.0\",\"name\":\"a\\nb\"}", false, ZT_CNI_E_CONFIG,
		  "name: control or non-ASCII character" },
	};
	struct zt_cni_conf c;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct zt_cni_err e = { 0 };
		char what[32];

		snprintf(what, sizeof(what), "conf case %zu", i);
		expect_code(conf(cases[i].text, cases[i].need_prev, &c, &e), cases[i].code, &e,
			    cases[i].msg, what);
		assert_null(c.root);
	}
	/* A NUL byte inside (not visible to strlen). */
	{
		static const char t[] = "{\"cniVersion\":\"1.0.0\"}\0{}";
		struct zt_cni_err e;

		assert_int_equal(zt_cni_conf_parse(t, sizeof(t) - 1, false, &c, &e),
				 -ZT_CNI_E_DECODE);
		assert_non_null(strstr(e.msg, "NUL byte"));
	}
	/* Nesting deeper than json-c's limit, and input over 1 MiB. */
	{
		size_t n = 100000;
		char *t = malloc(2 * n + 64);
		struct zt_cni_err e;
		size_t o = (size_t)sprintf(t, "{\"cniVersion\":\"1.0.0\",\"x\":");

		for (size_t i = 0; i < n; i++)
			t[o++] = '[';
		for (size_t i = 0; i < n; i++)
			t[o++] = ']';
		strcpy(t + o, "}");
		expect_code(conf(t, false, &c, &e), ZT_CNI_E_DECODE, &e, "not JSON", "deep");
		free(t);
		t = malloc(ZT_CNI_MAX_STDIN + 64);
		o = (size_t)sprintf(t, "{\"cniVersion\":\"1.0.0\",\"x\":\"");
		memset(t + o, 'a', ZT_CNI_MAX_STDIN);
		strcpy(t + o + ZT_CNI_MAX_STDIN, "\"}");
		expect_code(conf(t, false, &c, &e), ZT_CNI_E_DECODE, &e, "more than", "huge");
		free(t);
	}
}

static void test_conf_keys(void **state)
{
	struct zt_cni_conf c;
	struct zt_cni_err e;

	/* Defaults, unknown keys ignored, trailing whitespace (CRLF) fine. */
	assert_int_equal(conf("{\"cniVersion\":\"0.4.0\",\"name\":\"n\",\"type\":\"ztagent-cni\","
			      "\"capabilities\":{\"portMappings\":true},\"args\":{\"cni\":{}},"
			      "\"someFutureKey\":[1,{\"a\":null}]}\r\n",
			      false, &c, &e),
			 0);
	assert_string_equal(c.version, "0.4.0");
	assert_string_equal(c.type, "ztagent-cni");
	assert_string_equal(c.socket, "/run/ztagent/api.sock");
	assert_string_equal(c.state_dir, "/var/lib/ztagent");
	assert_int_equal(c.timeout_ns, ZT_CNI_DEFAULT_TIMEOUT_NS);
	assert_null(c.prev);
	zt_cni_conf_free(&c);
	assert_int_equal(conf("{\"cniVersion\":\"1.0.0\",\"timeout\":\"1500ms\"}", false, &c, &e),
			 0);
	assert_int_equal(c.timeout_ns, 1500000000ULL);
	zt_cni_conf_free(&c);
	assert_int_equal(conf("{\"cniVersion\":\"1.0.0\",\"timeout\":3}", false, &c, &e), 0);
	assert_int_equal(c.timeout_ns, 3000000000ULL);
	zt_cni_conf_free(&c);
}

/*
 * The echoed prevResult is the one json-c read: with a key written with
 * escapes, twice (the last wins, as in json-c), and strings that look like
 * structure.
 */
static void test_prev_span(void **state)
{
	static const char t[] =
		"{ \"cniVersion\" : \"1.0.0\" , \"prevResult\" : {\"first\":true} ,\n"
		"  \"x\": \"} { \\\" ] [\", \"n\": -1.5e3, \"b\": [true, null, {\"prevResult\":1}],\n"
		"  \"prev\\u0052esult\" :\t{\"cniVersion\":\"1.0.0\",\"note\":\"a \\\"}\\\" b\","
		"\"ips\":[{\"address\":\"198.18.0.2/24\"}]}  }";
	struct zt_cni_conf c;
	struct zt_cni_err e;
	json_object *v, *again;
	size_t off, n;

	assert_int_equal(conf(t, true, &c, &e), 0);
	assert_true(json_object_object_get_ex(c.prev, "note", &v)); /* json-c: the last */
	assert_false(json_object_object_get_ex(c.prev, "first", &v));
	/* The span holds exactly that object, byte for byte. */
	{
		char *dup = strndup(c.prev_text, c.prev_len);

		again = json_tokener_parse(dup);
		free(dup);
	}
	assert_non_null(again);
	assert_true(json_object_equal(again, c.prev));
	assert_int_equal(c.prev_text[0], '{');
	assert_int_equal(c.prev_text[c.prev_len - 1], '}');
	json_object_put(again);
	zt_cni_conf_free(&c);
	assert_int_equal(zt_cni_member_span(t, strlen(t), "missing", &off, &n), -ENOENT);
	assert_int_equal(zt_cni_member_span("[]", 2, "x", &off, &n), -EINVAL);
	assert_int_equal(zt_cni_member_span("{\"a\":", 5, "a", &off, &n), -EINVAL);
	assert_int_equal(zt_cni_member_span("{\"a\":1}", 7, "a", &off, &n), 0);
	assert_int_equal(off, 5);
	assert_int_equal(n, 1);
}

/* ---- CNI_ARGS ---- */

static void test_args(void **state)
{
	static const struct {
		const char *args;
		const char *msg;
	} bad[] = {
		{ "K8S_POD_NAME", "is not KEY=VALUE" },
		{ "=x", "is not KEY=VALUE" },
		{ "K8S_POD_NAME=a;K8S_POD_NAME=b", "K8S_POD_NAME given twice" },
		{ "K8S_POD_NAMESPACE=Prod", "not a namespace name" },
		{ "K8S_POD_NAMESPACE=a.b", "not a namespace name" },
		{ "K8S_POD_NAMESPACE=-a", "not a namespace name" },
		{ "K8S_POD_NAME=web_1", "not a pod name" },
		{ "K8S_POD_NAME=", "not a pod name" },
		{ "K8S_POD_UID=3f2a 7c1e", "not a pod UID" },
	};
	struct zt_cni_args a;
	struct zt_cni_err e;

	assert_int_equal(zt_cni_args_parse(NULL, &a, &e), 0);
	assert_string_equal(a.name, "");
	assert_int_equal(zt_cni_args_parse("", &a, &e), 0);
	assert_int_equal(
		zt_cni_args_parse("IgnoreUnknown=1;K8S_POD_NAMESPACE=prod;K8S_POD_NAME=web-7d4b9."
				  "x;K8S_POD_INFRA_CONTAINER_ID=abc123;K8S_POD_UID=3f2a7c1e-0b5d-"
				  "4e8a-9c61-2d7f0e4b9a15;SomethingNew=a=b=c;",
				  &a, &e),
		0);
	assert_string_equal(a.ns, "prod");
	assert_string_equal(a.name, "web-7d4b9.x");
	assert_string_equal(a.uid, "3f2a7c1e-0b5d-4e8a-9c61-2d7f0e4b9a15");
	/* Unknown keys, even long ones and odd values, are skipped; empty pairs too. */
	assert_int_equal(zt_cni_args_parse(";;AVeryLongUnknownKeyNameThatIsLongerThanSixtyFourBytes"
					   "ForSureYesIndeed=1;K8S_POD_NAME=a",
					   &a, &e),
			 0);
	assert_string_equal(a.name, "a");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char what[32];

		snprintf(what, sizeof(what), "args case %zu", i);
		expect_code(-zt_cni_args_parse(bad[i].args, &a, &e), ZT_CNI_E_ENV, &e, bad[i].msg,
			    what);
	}
	{
		char long_ns[200] = "K8S_POD_NAMESPACE=";

		memset(long_ns + strlen(long_ns), 'a', 70);
		expect_code(-zt_cni_args_parse(long_ns, &a, &e), ZT_CNI_E_ENV, &e,
			    "not a namespace name", "long namespace");
	}
}

/* ---- errors and versions ---- */

static void test_err_json(void **state)
{
	struct zt_cni_err e;
	json_object *o, *v;
	char *j;

	zt_cni_fail(&e, ZT_CNI_E_TRY_LATER, "connect: \"No such file\"\n",
		    "the daemon at %s is down", "/run/a b\t\"c\"");
	j = zt_cni_err_json("0.4.0", &e);
	assert_non_null(j);
	assert_null(strchr(j, '\n')); /* one line: escapes, not raw control characters */
	o = json_tokener_parse(j);
	assert_non_null(o);
	assert_true(json_object_object_get_ex(o, "cniVersion", &v));
	assert_string_equal(json_object_get_string(v), "0.4.0");
	assert_true(json_object_object_get_ex(o, "code", &v));
	assert_int_equal(json_object_get_int(v), 11);
	assert_true(json_object_object_get_ex(o, "msg", &v));
	assert_string_equal(json_object_get_string(v), "the daemon at /run/a b\t\"c\" is down");
	assert_true(json_object_object_get_ex(o, "details", &v));
	assert_string_equal(json_object_get_string(v), "connect: \"No such file\"\n");
	json_object_put(o);
	free(j);
	/* No details: no key; no version: the latest. */
	zt_cni_fail(&e, ZT_CNI_E_ENV, NULL, "CNI_COMMAND is not set");
	j = zt_cni_err_json(NULL, &e);
	o = json_tokener_parse(j);
	assert_false(json_object_object_get_ex(o, "details", &v));
	assert_true(json_object_object_get_ex(o, "cniVersion", &v));
	assert_string_equal(json_object_get_string(v), ZT_CNI_LATEST);
	json_object_put(o);
	free(j);
	/* An unsupported version is not echoed back in the error. */
	{
		struct zt_cni_conf c;

		assert_int_equal(conf("{\"cniVersion\":\"9.9.9\"}", false, &c, &e),
				 ZT_CNI_E_VERSION);
		assert_string_equal(c.version, "");
	}
	assert_true(zt_cni_version_ge("1.0.0", "0.4.0"));
	assert_true(zt_cni_version_ge("0.4.0", "0.4.0"));
	assert_false(zt_cni_version_ge("0.3.1", "0.4.0"));
	assert_false(zt_cni_version_ge("2.0.0", "0.4.0"));
}

/* ---- the DEL queue ---- */

static size_t count_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	assert_non_null(d);
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

static void test_spool(void **state)
{
	char base[] = "/tmp/zt-cnispool.XXXXXX", dir[128], path[4200], path2[4200], err[512];
	struct zt_cni_del d = { .container_id = "abc_1.x-2",
				.ifname = "eth0",
				.pod_ns = "prod",
				.pod_name = "web",
				.pod_uid = "u-1",
				.queued_unix = 1767225600 },
			  back;
	struct stat st;

	assert_non_null(mkdtemp(base));
	snprintf(dir, sizeof(dir), "%s/cni-pending", base);
	assert_int_equal(zt_cni_spool_write(dir, &d, path, sizeof(path), err, sizeof(err)), 0);
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(zt_cni_spool_read(path, &back, err, sizeof(err)), 0);
	assert_string_equal(back.container_id, d.container_id);
	assert_string_equal(back.ifname, "eth0");
	assert_string_equal(back.pod_ns, "prod");
	assert_string_equal(back.pod_name, "web");
	assert_string_equal(back.pod_uid, "u-1");
	assert_int_equal(back.queued_unix, d.queued_unix);
	/* The same DEL again replaces its own file; another interface is another file. */
	assert_int_equal(zt_cni_spool_write(dir, &d, path2, sizeof(path2), err, sizeof(err)), 0);
	assert_string_equal(path, path2);
	assert_int_equal(count_files(dir), 1);
	snprintf(d.ifname, sizeof(d.ifname), "net1");
	assert_int_equal(zt_cni_spool_write(dir, &d, path2, sizeof(path2), err, sizeof(err)), 0);
	assert_string_not_equal(path, path2);
	assert_int_equal(count_files(dir), 2);
	/* Nothing to queue for ids ADD would refuse. */
	snprintf(d.container_id, sizeof(d.container_id), "../x");
	assert_int_equal(zt_cni_spool_write(dir, &d, NULL, 0, err, sizeof(err)), -EINVAL);
	unlink(path);
	unlink(path2);
	rmdir(dir);
	rmdir(base);
}

static void test_spool_hostile(void **state)
{
	static const char *const bad[] = {
		"",
		"not json",
		"[]",
		"{}",
		"{\"container_id\":\"abc\"}",
		"{\"container_id\":5,\"ifname\":\"eth0\"}",
		"{\"container_id\":\"../../etc\",\"ifname\":\"eth0\"}",
		"{\"container_id\":\"abc\",\"ifname\":\"averyveryverylongname\"}",
		"{\"container_id\":\"abc\",\"ifname\":\"eth0\",\"queued_unix\":-1}",
		"{\"container_id\":\"abc\",\"ifname\":\"eth0\",\"queued_unix\":\"now\"}",
		"{\"container_id\":\"abc\",\"ifname\":\"eth0\",\"pod_name\":\"a\\u001b[2J\"}",
		"{\"container_id\":\"abc\",\"ifname\":\"eth0\"} trailing",
		"{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":1}}}},\"container_id\":\"abc\",\"ifname\":\"e\"}",
	};
	struct zt_cni_del d;
	char err[512], big[ZT_CNI_SPOOL_MAX_BYTES + 100];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (zt_cni_spool_parse(bad[i], strlen(bad[i]), &d, err, sizeof(err)) != -EBADMSG)
			fail_msg("spool case %zu accepted: %s", i, bad[i]);
		assert_true(err[0] != '\0');
	}
	assert_int_equal(zt_cni_spool_parse("{\"container_id\":\"abc\",\"ifname\":\"eth0\","
					    "\"future\":[1,2]}\n",
					    strlen("{\"container_id\":\"abc\",\"ifname\":\"eth0\","
						   "\"future\":[1,2]}\n"),
					    &d, err, sizeof(err)),
			 0);
	memset(big, ' ', sizeof(big));
	assert_int_equal(zt_cni_spool_parse(big, sizeof(big), &d, err, sizeof(err)), -EBADMSG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prev_100),      cmocka_unit_test(test_prev_03x_04),
		cmocka_unit_test(test_prev_no_host),  cmocka_unit_test(test_prev_hostile),
		cmocka_unit_test(test_conf_hostile),  cmocka_unit_test(test_conf_keys),
		cmocka_unit_test(test_prev_span),     cmocka_unit_test(test_args),
		cmocka_unit_test(test_err_json),      cmocka_unit_test(test_spool),
		cmocka_unit_test(test_spool_hostile),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
