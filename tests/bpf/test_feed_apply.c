// SPDX-License-Identifier: GPL-2.0-only
/*
 * src/feeds/apply.c against the real kernel maps (a bpffs of its own, the
 * XDP guard's blocklist and tc_endpoint's IOC maps): a new version is a
 * diff (added and released prefixes only), entries shared by several feeds
 * stay until the last one drops them, an operator's entry is never
 * replaced or removed by a feed, at every step of a swap one version or
 * the other is entirely in the kernel, a version the maps cannot hold is
 * rolled back with the previous one in force, outbound values merge their
 * feeds (block over alert, ports), and a hit's reference is the feed's own.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent/config.h"
#include "feeds/apply.h"
#include "feeds/feed.h"
#include "guard/blocklist.h"
#include "guard/datapath.h"
#include "guard/drift.h"
#include "tc_endpoint.skel.h"
#include "xdp_guard.skel.h"
#include "private_mounts.h"

struct env {
	char dir[64];
	struct zt_config cfg;
	struct zt_datapath *dp;
	struct zt_blocklist *bl;
	struct zt_feed_apply *a;
	struct zt_feed_apply_report last;
	int reports;
};

static void on_done(void *ctx, const struct zt_feed_apply_report *rep)
{
	struct env *e = ctx;

	e->last = *rep;
	e->reports++;
}

/* feeds: "name:direction:action" (direction s|d|b, action b|a). */
static int setup_with(void **state, uint32_t block_max, const char *const *feeds, unsigned int n)
{
	struct env *e = calloc(1, sizeof(*e));
	struct zt_feed_apply_maps m;
	char err[512];

	strcpy(e->dir, "/tmp/zt-fatest-XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	assert_int_equal(mount("bpf", e->dir, "bpf", 0, "mode=0700"), 0);
	zt_config_defaults(&e->cfg);
	snprintf(e->cfg.bpffs, sizeof(e->cfg.bpffs), "%s/ztagent", e->dir);
	e->cfg.xdp.blocklist_max = block_max;
	e->cfg.xdp.allowlist_max = 16;
	e->cfg.xdp.ringbuf_bytes = 4096;
	e->cfg.policy.conntrack_max = 1024;
	zt_log_set_level(ZT_LOG_ERROR);
	for (unsigned int i = 0; i < n; i++) {
		struct zt_feed_config *f = &e->cfg.feeds[i];

		zt_feed_config_defaults(f);
		snprintf(f->name, sizeof(f->name), "%.*s", (int)(strchr(feeds[i], ':') - feeds[i]),
			 feeds[i]);
		f->format = ZT_FEED_CIDR;
		switch (strchr(feeds[i], ':')[1]) {
		case 's':
			f->direction = ZT_FEED_SOURCE;
			break;
		case 'd':
			f->direction = ZT_FEED_DESTINATION;
			break;
		default:
			f->direction = ZT_FEED_BOTH;
		}
		f->action = strrchr(feeds[i], ':')[1] == 'a' ? ZT_FEED_ALERT : ZT_FEED_BLOCK;
	}
	e->cfg.n_feeds = n;
	if (zt_datapath_init(&e->dp, &e->cfg, err, sizeof(err)) < 0)
		fail_msg("zt_datapath_init: %s", err);
	assert_int_equal(zt_blocklist_init(&e->bl, e->dp, err, sizeof(err)), 0);
	m.bl = e->bl;
	m.ioc_host[0] = bpf_map__fd(e->dp->tc->maps.ioc_host_v4);
	m.ioc_host[1] = bpf_map__fd(e->dp->tc->maps.ioc_host_v6);
	m.ioc_lpm[0] = bpf_map__fd(e->dp->tc->maps.ioc_lpm_v4);
	m.ioc_lpm[1] = bpf_map__fd(e->dp->tc->maps.ioc_lpm_v6);
	m.ioc_state = bpf_map__fd(e->dp->tc->maps.ioc_state);
	assert_int_equal(zt_feed_apply_init(&e->a, &m, e->cfg.feeds, n, on_done, e), 0);
	*state = e;
	return 0;
}

static int setup(void **state)
{
	static const char *const f[] = { "a:b:b", "b:b:a" };

	return setup_with(state, 4096, f, 2);
}

static int setup_src2(void **state)
{
	static const char *const f[] = { "a:s:b", "b:s:b" };

	return setup_with(state, 4096, f, 2);
}

static int setup_big(void **state)
{
	static const char *const f[] = { "a:s:b" };

	return setup_with(state, 65536, f, 1);
}

static int setup_small(void **state)
{
	static const char *const f[] = { "a:s:b" };

	return setup_with(state, 64, f, 1);
}

static int setup_dst2(void **state)
{
	static const char *const f[] = { "blk:d:b", "alr:d:a" };

	return setup_with(state, 4096, f, 2);
}

static int teardown(void **state)
{
	struct env *e = *state;
	char err[256];

	zt_feed_apply_stop(e->a);
	zt_blocklist_stop(e->bl);
	zt_datapath_stop(e->dp);
	zt_datapath_detach(&e->cfg, err, sizeof(err));
	umount(e->dir);
	rmdir(e->dir);
	free(e);
	return 0;
}

/* A finished result of text in fmt. */
static struct zt_feed_result *res(const char *name, enum zt_feed_format fmt, const char *text)
{
	struct zt_feed_result *r = calloc(1, sizeof(*r));
	struct zt_feed_parse_opts o = { .feed = name };

	assert_non_null(r);
	assert_int_equal(zt_feed_result_init(r, name), 0);
	assert_int_equal(zt_feed_parse(fmt, text, strlen(text), r, &o), 0);
	assert_int_equal(zt_feed_finish(r, 1000000), 0);
	return r;
}

static void submit(struct env *e, unsigned int idx, enum zt_feed_format fmt, const char *text)
{
	uint8_t d[32] = { (uint8_t)idx, (uint8_t)strlen(text) };

	assert_int_equal(
		zt_feed_apply_submit(e->a, idx, res(e->cfg.feeds[idx].name, fmt, text), d, 0), 0);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/*
 * Steps until every job is done, as the daemon runs them: a step that
 * stopped for the blocklist's room (its mirror grown off the loop) is
 * followed by a pause, not by a spin (src/feeds/feeds.c, WAIT_GAP_NS).
 * Bounded by time, not by a count of steps: how many steps a wait takes
 * depends on how busy the machine is.
 */
static void run_all(struct env *e)
{
	uint64_t t0 = mono_ns();

	while (zt_feed_apply_step(e->a, 50000000ULL)) {
		if (zt_feed_apply_waiting(e->a))
			usleep(1000);
		if (mono_ns() - t0 > 120000000000ULL)
			fail_msg("the feed jobs were not done after 120 s");
	}
}

static struct zt_cidr cidr(const char *s)
{
	struct zt_cidr c;

	assert_int_equal(zt_cidr_parse(s, &c, NULL), 0);
	return c;
}

/* The blocklist entry for exactly s (hash map; these tests use few lengths), or -ENOENT. */
static int bl_get(struct env *e, const char *s, struct zt_block_entry *v)
{
	struct zt_cidr c = cidr(s);
	uint8_t key[sizeof(struct zt_ip6_key)];
	uint32_t plen = c.prefixlen;
	int fd = c.family == AF_INET ? bpf_map__fd(e->dp->xdp->maps.blocklist_v4) :
				       bpf_map__fd(e->dp->xdp->maps.blocklist_v6);

	memcpy(key, &plen, 4);
	memcpy(key + 4, c.addr, c.family == AF_INET ? 4 : 16);
	return bpf_map_lookup_elem(fd, key, v) ? -errno : 0;
}

static bool bl_has(struct env *e, const char *s)
{
	struct zt_block_entry v;

	return bl_get(e, s, &v) == 0;
}

static int ioc_get(struct env *e, const char *s, struct zt_ioc_val *v)
{
	struct zt_cidr c = cidr(s);
	uint8_t key[sizeof(struct zt_ip6_key)];
	uint32_t plen = c.prefixlen;
	bool v4 = c.family == AF_INET, host = plen == (v4 ? 32u : 128u);
	int fd =
		host ? bpf_map__fd(v4 ? e->dp->tc->maps.ioc_host_v4 : e->dp->tc->maps.ioc_host_v6) :
		       bpf_map__fd(v4 ? e->dp->tc->maps.ioc_lpm_v4 : e->dp->tc->maps.ioc_lpm_v6);

	memcpy(key, &plen, 4);
	memcpy(key + 4, c.addr, v4 ? 4 : 16);
	return bpf_map_lookup_elem(fd, key, v) ? -errno : 0;
}

static struct zt_ioc_state ioc_state(struct env *e)
{
	struct zt_ioc_state st;
	uint32_t zero = 0;

	assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(e->dp->tc->maps.ioc_state), &zero, &st),
			 0);
	return st;
}

static void test_apply_then_diff(void **state)
{
	struct env *e = *state;
	struct zt_block_entry b;
	struct zt_ioc_val v;
	struct zt_ioc_state st;

	submit(e, 0, ZT_FEED_CIDR, "198.51.100.0/24 ; SBL1\n203.0.113.7 ; SBL2\n2001:db8:bad::1\n");
	run_all(e);
	assert_int_equal(e->reports, 1);
	assert_true(e->last.ok);
	assert_int_equal(e->last.src.added, 3);
	assert_int_equal(e->last.src_entries, 3);
	assert_int_equal(e->last.dst_entries, 3);
	assert_int_equal(bl_get(e, "198.51.100.0/24", &b), 0);
	assert_int_equal(b.source, ZT_BS_FEED);
	assert_int_equal(b.reason, ZT_BR_THREAT_INTEL);
	assert_int_equal(b.feed_id, 1);
	assert_int_equal(b.expires_ns, 0);
	assert_true(bl_has(e, "2001:db8:bad::1/128"));
	/* Outbound: hosts in the hash map, the prefix in the trie, flags on. */
	assert_int_equal(ioc_get(e, "203.0.113.7/32", &v), 0);
	assert_int_equal(v.feed_id, 1);
	assert_int_equal(v.action, ZT_IOC_BLOCK);
	assert_int_equal(v.prefixlen, 32);
	assert_int_equal(ioc_get(e, "198.51.100.0/24", &v), 0);
	assert_int_equal(v.prefixlen, 24);
	st = ioc_state(e);
	assert_true(st.host_v4_used && st.lpm_v4_used && st.host_v6_used && !st.lpm_v6_used);

	/* v2: the /24 and the IPv6 host go, .8 comes; .7 is untouched. */
	submit(e, 0, ZT_FEED_CIDR, "203.0.113.7 ; SBL2\n203.0.113.8\n");
	run_all(e);
	assert_int_equal(e->reports, 2);
	assert_true(e->last.ok);
	assert_int_equal(e->last.src.added, 1);
	assert_int_equal(e->last.src.unchanged, 1);
	assert_int_equal(e->last.src.removed, 2);
	assert_int_equal(e->last.dst_added, 1);
	assert_int_equal(e->last.dst_removed, 2);
	assert_false(bl_has(e, "198.51.100.0/24"));
	assert_false(bl_has(e, "2001:db8:bad::1/128"));
	assert_true(bl_has(e, "203.0.113.8/32"));
	assert_int_equal(ioc_get(e, "198.51.100.0/24", &v), -ENOENT);
	assert_int_equal(ioc_get(e, "203.0.113.8/32", &v), 0);
	st = ioc_state(e);
	/* The last trie and IPv6 entries went: the program stops looking there. */
	assert_true(st.host_v4_used && !st.lpm_v4_used && !st.host_v6_used);
	{
		char ref[64];
		struct zt_cidr c = cidr("203.0.113.7");

		assert_int_equal(zt_feed_apply_reference(e->a, 0, &c, ref, sizeof(ref)), 0);
		assert_string_equal(ref, "SBL2");
		c = cidr("198.51.100.0/24");
		assert_int_equal(zt_feed_apply_reference(e->a, 0, &c, ref, sizeof(ref)), -ENOENT);
	}
}

static void test_shared_until_last(void **state)
{
	struct env *e = *state;
	uint32_t src, dst;
	struct zt_cidr y = cidr("192.0.2.2");

	submit(e, 0, ZT_FEED_CIDR, "192.0.2.1\n192.0.2.2\n");
	submit(e, 1, ZT_FEED_CIDR, "192.0.2.2\n192.0.2.3\n");
	run_all(e);
	assert_int_equal(e->reports, 2);
	zt_feed_apply_owners(e->a, &y, &src, &dst);
	assert_int_equal(src, 3);
	submit(e, 0, ZT_FEED_CIDR, "192.0.2.1\n");
	run_all(e);
	assert_true(bl_has(e, "192.0.2.2/32")); /* b still lists it */
	zt_feed_apply_owners(e->a, &y, &src, &dst);
	assert_int_equal(src, 2);
	submit(e, 1, ZT_FEED_CIDR, "192.0.2.3\n");
	run_all(e);
	assert_false(bl_has(e, "192.0.2.2/32"));
	assert_true(bl_has(e, "192.0.2.1/32"));
	assert_true(bl_has(e, "192.0.2.3/32"));
	zt_feed_apply_owners(e->a, &y, &src, &dst);
	assert_int_equal(src, 0);
}

static void test_operator_entry_untouched(void **state)
{
	struct env *e = *state;
	struct zt_block_req req = { .reason = ZT_BR_OPERATOR, .source = ZT_BS_MANUAL };
	struct zt_cidr x = cidr("192.0.2.9");
	struct zt_block_entry b;
	char err[256];

	assert_int_equal(zt_blocklist_add(e->bl, &x, &req, NULL, err, sizeof(err)), 0);
	submit(e, 0, ZT_FEED_CIDR, "192.0.2.9\n192.0.2.10\n");
	run_all(e);
	assert_int_equal(e->last.src.kept, 1);
	assert_int_equal(e->last.src.added, 1);
	assert_int_equal(bl_get(e, "192.0.2.9/32", &b), 0);
	assert_int_equal(b.source, ZT_BS_MANUAL);
	/* The feed drops both: its own entry goes, the operator's stays. */
	submit(e, 0, ZT_FEED_CIDR, "# nothing listed today\n");
	run_all(e);
	assert_true(e->last.ok);
	assert_int_equal(bl_get(e, "192.0.2.9/32", &b), 0);
	assert_int_equal(b.source, ZT_BS_MANUAL);
	assert_false(bl_has(e, "192.0.2.10/32"));
	/* A feed entry an operator then blocks by hand becomes the operator's. */
	submit(e, 1, ZT_FEED_CIDR, "192.0.2.11\n");
	run_all(e);
	x = cidr("192.0.2.11");
	assert_int_equal(zt_blocklist_add(e->bl, &x, &req, NULL, err, sizeof(err)), 0);
	submit(e, 1, ZT_FEED_CIDR, "# empty\n");
	run_all(e);
	assert_int_equal(bl_get(e, "192.0.2.11/32", &b), 0);
	assert_int_equal(b.source, ZT_BS_MANUAL);
}

static char *host_list(unsigned int from, unsigned int to)
{
	char *s = malloc((size_t)(to - from) * 20 + 1), *p = s;

	assert_non_null(s);
	for (unsigned int i = from; i < to; i++)
		p += sprintf(p, "100.64.%u.%u\n", i / 256, i % 256);
	*p = '\0';
	return s;
}

static bool all_present(struct env *e, unsigned int from, unsigned int to)
{
	for (unsigned int i = from; i < to; i++) {
		char s[32];

		snprintf(s, sizeof(s), "100.64.%u.%u/32", i / 256, i % 256);
		if (!bl_has(e, s))
			return false;
	}
	return true;
}

static void test_never_neither(void **state)
{
	struct env *e = *state;
	char *v1 = host_list(0, 20000), *v2 = host_list(10000, 30000);
	unsigned int steps = 0;
	bool more;

	submit(e, 0, ZT_FEED_CIDR, v1);
	run_all(e);
	assert_true(all_present(e, 0, 20000));
	submit(e, 0, ZT_FEED_CIDR, v2);
	/* One chunk per step (the budget is spent at once): look at the kernel after each. */
	do {
		more = zt_feed_apply_step(e->a, 1);
		steps++;
		if (!all_present(e, 0, 20000) && !all_present(e, 10000, 30000))
			fail_msg("after step %u neither version is wholly in the blocklist", steps);
	} while (more);
	/* Several steps (how many depends on the chunk size the first run's timing left). */
	print_message("    %u steps\n", steps);
	assert_true(steps >= 2);
	assert_true(all_present(e, 10000, 30000));
	assert_false(bl_has(e, "100.64.0.0/32"));
	assert_false(bl_has(e, "100.64.39.15/32")); /* 9999 */
	assert_int_equal(zt_blocklist_count(e->bl, 0, false), 20000);
	assert_int_equal(e->last.src.added, 10000);
	assert_int_equal(e->last.src.removed, 10000);
	free(v1);
	free(v2);
}

static void test_rollback_when_full(void **state)
{
	struct env *e = *state;
	char *v1 = host_list(0, 40), *v2 = host_list(100, 140);

	submit(e, 0, ZT_FEED_CIDR, v1);
	run_all(e);
	assert_true(e->last.ok);
	submit(e, 0, ZT_FEED_CIDR, v2);
	run_all(e);
	/* 80 entries do not fit in 64 while both are there: refused, v1 stays whole. */
	assert_false(e->last.ok);
	assert_int_equal(e->last.err, -ENOSPC);
	assert_true(all_present(e, 0, 40));
	assert_false(bl_has(e, "100.64.0.100/32"));
	assert_int_equal(zt_blocklist_count(e->bl, 0, false), 40);
	assert_int_equal(zt_feed_apply_current(e->a, 0)->n, 40);
	/* A version that fits goes in afterwards. */
	free(v2);
	v2 = host_list(20, 60);
	submit(e, 0, ZT_FEED_CIDR, v2);
	run_all(e);
	assert_true(e->last.ok);
	assert_true(all_present(e, 20, 60));
	assert_false(bl_has(e, "100.64.0.19/32"));
	free(v1);
	free(v2);
}

static void test_outbound_merge(void **state)
{
	struct env *e = *state;
	struct zt_ioc_val v;
	const char *feodo =
		"# first_seen_utc,dst_ip,dst_port,c2_status,last_online,malware\n"
		"\"2024-01-01 00:00:00\",\"198.51.100.66\",\"8443\",\"online\",\"2024-02-01\",\"Dridex\"\n";

	e->cfg.feeds[0].format = ZT_FEED_FEODO_CSV;
	submit(e, 0, ZT_FEED_FEODO_CSV, feodo);
	run_all(e);
	assert_int_equal(ioc_get(e, "198.51.100.66/32", &v), 0);
	assert_int_equal(v.port, 8443);
	assert_int_equal(v.action, ZT_IOC_BLOCK);
	assert_int_equal(v.feed_id, 1);
	/* Inbound untouched: these feeds are destination only. */
	assert_false(bl_has(e, "198.51.100.66/32"));
	{
		char ref[64];
		struct zt_cidr c = cidr("198.51.100.66");

		assert_int_equal(zt_feed_apply_reference(e->a, 0, &c, ref, sizeof(ref)), 0);
		assert_string_equal(ref, "Dridex");
	}
	/* An alert feed lists it for every port: block still wins, every port. */
	submit(e, 1, ZT_FEED_CIDR, "198.51.100.66\n");
	run_all(e);
	assert_int_equal(ioc_get(e, "198.51.100.66/32", &v), 0);
	assert_int_equal(v.port, 0);
	assert_int_equal(v.action, ZT_IOC_BLOCK);
	assert_int_equal(v.feed_id, 1);
	/* The block feed drops it: the alert feed's value remains. */
	submit(e, 0, ZT_FEED_FEODO_CSV,
	       "# first_seen_utc,dst_ip,dst_port,c2_status,last_online,malware\n");
	run_all(e);
	assert_int_equal(ioc_get(e, "198.51.100.66/32", &v), 0);
	assert_int_equal(v.action, ZT_IOC_ALERT);
	assert_int_equal(v.feed_id, 2);
	submit(e, 1, ZT_FEED_CIDR, "# none\n");
	run_all(e);
	assert_int_equal(ioc_get(e, "198.51.100.66/32", &v), -ENOENT);
	assert_false(ioc_state(e).host_v4_used);
}

static void test_valid_until_expires(void **state)
{
	struct env *e = *state;
	struct zt_block_entry b;
	char stix[600];
	uint64_t until = zt_now_unix() + 3600;
	char ts[40];

	zt_time_format(until, ts, sizeof(ts));
	snprintf(
		stix, sizeof(stix),
		"{\"type\":\"bundle\",\"id\":\"bundle--1\",\"objects\":[{\"type\":\"indicator\","
		"\"spec_version\":\"2.1\",\"id\":\"indicator--0001\",\"pattern\":\"[ipv4-addr:value = '198.51.100.77']\","
		"\"pattern_type\":\"stix\",\"valid_from\":\"2024-01-01T00:00:00Z\",\"valid_until\":\"%s\"}]}",
		ts);
	submit(e, 0, ZT_FEED_STIX2, stix);
	run_all(e);
	assert_true(e->last.ok);
	assert_int_equal(bl_get(e, "198.51.100.77/32", &b), 0);
	/* An hour from now on the boot clock, to within a few seconds. */
	assert_true(b.expires_ns > zt_now_boot_ns() + 3590ULL * 1000000000ULL);
	assert_true(b.expires_ns < zt_now_boot_ns() + 3610ULL * 1000000000ULL);
	{
		char ref[64];
		struct zt_cidr c = cidr("198.51.100.77");

		assert_int_equal(zt_feed_apply_reference(e->a, 0, &c, ref, sizeof(ref)), 0);
		assert_string_equal(ref, "indicator--0001");
	}
}

static void test_orphans_swept(void **state)
{
	struct env *e = *state;
	struct zt_bl_feed_item it[2] = { { .cidr = cidr("192.0.2.50"), .feed_id = 9 },
					 { .cidr = cidr("192.0.2.52"), .feed_id = 9 } };
	struct zt_bl_feed_counts cnt = { 0 };
	struct zt_ioc_val v = { .feed_id = 9, .prefixlen = 32 }, got;
	struct zt_ip4_key k = { .prefixlen = 32, .addr = { 192, 0, 2, 51 } };
	struct zt_ioc_state st = { .host_v4_used = 1 };
	uint32_t zero = 0;
	char err[256];

	/* What an earlier run left: two feed entries inbound, one outbound. */
	assert_int_equal(zt_blocklist_feed_add(e->bl, it, 2, &cnt, err, sizeof(err)), 0);
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(e->dp->tc->maps.ioc_host_v4), &k, &v, 0),
			 0);
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(e->dp->tc->maps.ioc_state), &zero, &st, 0),
			 0);
	submit(e, 0, ZT_FEED_CIDR, "192.0.2.52\n");
	run_all(e);
	/* Feed b has no version yet: it may list them, nothing goes. */
	assert_true(bl_has(e, "192.0.2.50/32"));
	assert_int_equal(ioc_get(e, "192.0.2.51/32", &got), 0);
	submit(e, 1, ZT_FEED_CIDR, "# nothing\n");
	run_all(e);
	assert_int_equal(e->last.orphans, 2);
	assert_false(bl_has(e, "192.0.2.50/32"));
	assert_int_equal(ioc_get(e, "192.0.2.51/32", &got), -ENOENT);
	assert_true(bl_has(e, "192.0.2.52/32"));
	assert_int_equal(ioc_get(e, "192.0.2.52/32", &got), 0);
	assert_true(ioc_state(e).host_v4_used);
}

/* Hosts from..to-1 of 100.64.0.0/10 as a CIDR list, each with valid_until until (0: none). */
static struct zt_feed_result *hosts_until(struct env *e, unsigned int from, unsigned int to,
					  uint64_t until)
{
	char *s = malloc((size_t)(to - from) * 20 + 16), *p = s;
	struct zt_feed_result *r;

	assert_non_null(s);
	p += sprintf(p, "# hosts\n");
	for (unsigned int i = from; i < to; i++)
		p += sprintf(p, "100.%u.%u.%u\n", 64 + (i >> 16), (i >> 8) & 255, i & 255);
	r = res(e->cfg.feeds[0].name, ZT_FEED_CIDR, s);
	for (size_t i = 0; i < r->n; i++)
		r->entries[i].valid_until = until;
	free(s);
	return r;
}

static void submit_r(struct env *e, struct zt_feed_result *r)
{
	uint8_t d[32] = { 1 };

	assert_int_equal(zt_feed_apply_submit(e->a, 0, r, d, 0), 0);
}

static uint64_t bl_expiry(struct env *e, unsigned int i)
{
	struct zt_block_entry b;
	char s[32];

	snprintf(s, sizeof(s), "100.%u.%u.%u/32", 64 + (i >> 16), (i >> 8) & 255, i & 255);
	if (bl_get(e, s, &b) < 0)
		return UINT64_MAX;
	return b.expires_ns;
}

/*
 * Entries rewritten (another valid_until) in the same chunks as new ones:
 * the blocklist writes them through the slots its feed path looked up
 * once, and its mirror must agree with the kernel afterwards (the same
 * version again is all unchanged; dropping it removes every entry).
 */
static void test_rewritten_with_new(void **state)
{
	struct env *e = *state;
	uint64_t u1 = zt_now_unix() + 3600, u2 = zt_now_unix() + 7200;
	uint64_t b2 = zt_feed_apply_boot_ns(e->a, u2);
	struct zt_feed_result *v2;

	submit_r(e, hosts_until(e, 0, 100, u1));
	run_all(e);
	assert_true(e->last.ok);
	assert_int_equal(bl_expiry(e, 7), zt_feed_apply_boot_ns(e->a, u1));
	/* v2: the 100 with another expiry, and 3000 new ones without. */
	v2 = hosts_until(e, 0, 3100, 0);
	for (size_t i = 0; i < v2->n; i++)
		if (v2->entries[i].cidr.addr[2] == 0 && v2->entries[i].cidr.addr[3] < 100)
			v2->entries[i].valid_until = u2;
	submit_r(e, v2);
	run_all(e);
	assert_true(e->last.ok);
	assert_int_equal(e->last.src.updated, 100);
	assert_int_equal(e->last.src.added, 3000);
	for (unsigned int i = 0; i < 3100; i++)
		if (bl_expiry(e, i) != (i < 100 ? b2 : 0))
			fail_msg("host %u: kernel expiry %llu, want %llu", i,
				 (unsigned long long)bl_expiry(e, i),
				 (unsigned long long)(i < 100 ? b2 : 0));
	assert_int_equal(zt_blocklist_count(e->bl, 0, false), 3100);
	/* The same again: the mirror holds what the kernel does, nothing is written. */
	v2 = hosts_until(e, 0, 3100, 0);
	for (size_t i = 0; i < v2->n; i++)
		if (v2->entries[i].cidr.addr[2] == 0 && v2->entries[i].cidr.addr[3] < 100)
			v2->entries[i].valid_until = u2;
	submit_r(e, v2);
	run_all(e);
	assert_int_equal(e->last.src.unchanged, 3100);
	assert_int_equal(e->last.src.updated, 0);
	assert_int_equal(e->last.src.added, 0);
	submit(e, 0, ZT_FEED_CIDR, "# none\n");
	run_all(e);
	assert_int_equal(e->last.src.removed, 3100);
	assert_int_equal(zt_blocklist_count(e->bl, 0, false), 0);
	assert_int_equal(bl_expiry(e, 50), UINT64_MAX);
	assert_int_equal(bl_expiry(e, 3000), UINT64_MAX);
}

static int setup_swap(void **state)
{
	static const char *const f[] = { "a:s:b" };

	return setup_with(state, 400000, f, 1);
}

/*
 * The first version makes room for a second of its size: a swap to one
 * sharing half never waits for the mirror to grow (which then ended in a
 * rehash of every entry in one step of the loop: 0.1-0.25 s at 1M).
 */
static void test_swap_needs_no_growth(void **state)
{
	struct env *e = *state;
	unsigned int steps = 0, waits = 0;

	submit_r(e, hosts_until(e, 0, 100000, 0));
	run_all(e);
	assert_true(e->last.ok);
	assert_int_equal(zt_blocklist_count(e->bl, 0, false), 100000);
	submit_r(e, hosts_until(e, 50000, 150000, 0));
	while (zt_feed_apply_step(e->a, 50000000ULL)) {
		if (zt_feed_apply_waiting(e->a)) {
			waits++;
			usleep(1000);
		}
		assert_true(++steps < 100000);
	}
	assert_true(e->last.ok);
	assert_int_equal(waits, 0);
	assert_int_equal(e->last.src.added, 50000);
	assert_int_equal(e->last.src.removed, 50000);
	assert_int_equal(zt_blocklist_count(e->bl, 0, false), 100000);
	assert_true(e->last.in_force_ns > 0 && e->last.in_force_ns <= e->last.apply_ns);
	assert_int_equal(bl_expiry(e, 49999), UINT64_MAX);
	assert_int_equal(bl_expiry(e, 149999), 0);
}

struct drift_seen {
	int reports, failed;
	char first[256];
};

static void drift_rec(void *ctx, const char *kind, const char *subject, const char *what,
		      bool repaired, int err)
{
	struct drift_seen *d = ctx;

	(void)kind;
	(void)repaired;
	if (!d->reports++)
		snprintf(d->first, sizeof(d->first), "%s: %s (%s)", subject, what, strerror(-err));
	d->failed += err != 0;
}

/*
 * The drift check's whole-map read (a worker thread's, made while the
 * kernel held the old version) compared after a swap released half of it:
 * the released keys differ from the read but not from the mirror, which is
 * no drift and nothing to repair (it was reported as a failed repair: the
 * delete of an "extra" found it gone). A key really added outside is still
 * found and removed.
 */
static void test_drift_read_during_swap(void **state)
{
	struct env *e = *state;
	struct drift_seen d = { 0 };
	struct zt_drift_hooks h = { .report = drift_rec, .ctx = &d };
	struct zt_bl_scan *sc;
	struct zt_block_entry v = { .source = ZT_BS_FEED };
	uint8_t key[8] = { 32, 0, 0, 0, 198, 18, 7, 7 };
	int fd = bpf_map__fd(e->dp->xdp->maps.blocklist_v4);

	submit_r(e, hosts_until(e, 0, 2000, 0));
	run_all(e);
	assert_true(e->last.ok);
	assert_int_equal(zt_blocklist_scan_new(e->bl, 0, &sc), 0);
	assert_int_equal(zt_blocklist_scan_run(sc), 0);
	/* Nothing changed since the read: nothing differs. */
	assert_int_equal(zt_blocklist_scan_compare(e->bl, sc, 100000, &h), 0);
	submit_r(e, hosts_until(e, 1000, 3000, 0));
	run_all(e);
	assert_true(e->last.ok);
	assert_int_equal(e->last.src.removed, 1000);
	/* The read is the old version's now: buckets differ, nothing drifted. */
	assert_true(zt_blocklist_scan_compare(e->bl, sc, 100000, &h) > 0);
	if (d.reports) {
		zt_blocklist_scan_free(sc);
		fail_msg("%d drift reports (%d failed repairs) for the agent's own swap, first: %s",
			 d.reports, d.failed, d.first);
	}
	/* An entry written behind the agent's back is still drift, and goes. */
	assert_int_equal(bpf_map_update_elem(fd, key, &v, BPF_ANY), 0);
	assert_int_equal(zt_blocklist_scan_run(sc), 0);
	assert_true(zt_blocklist_scan_compare(e->bl, sc, 100000, &h) > 0);
	assert_int_equal(d.reports, 1);
	assert_int_equal(d.failed, 0);
	assert_int_equal(bpf_map_lookup_elem(fd, key, &v), -ENOENT);
	zt_blocklist_scan_free(sc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_apply_then_diff, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shared_until_last, setup_src2, teardown),
		cmocka_unit_test_setup_teardown(test_operator_entry_untouched, setup_src2,
						teardown),
		cmocka_unit_test_setup_teardown(test_never_neither, setup_big, teardown),
		cmocka_unit_test_setup_teardown(test_rollback_when_full, setup_small, teardown),
		cmocka_unit_test_setup_teardown(test_outbound_merge, setup_dst2, teardown),
		cmocka_unit_test_setup_teardown(test_valid_until_expires, setup, teardown),
		cmocka_unit_test_setup_teardown(test_orphans_swept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rewritten_with_new, setup_big, teardown),
		cmocka_unit_test_setup_teardown(test_swap_needs_no_growth, setup_swap, teardown),
		cmocka_unit_test_setup_teardown(test_drift_read_during_swap, setup_big, teardown),
	};

	libbpf_set_print(NULL);
	zt_test_private_mounts();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
