// SPDX-License-Identifier: GPL-2.0-only
/*
 * The daemon's blocklist module against real kernel maps: what it writes is
 * what the XDP program reads (entries, published prefix lengths, trie
 * overflow, allowlist flags), imports are all or nothing, expiry removes
 * entries, and a restart rebuilds the mirror from the pins.
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
#include <unistd.h>
#include <cmocka.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include "guard/blocklist.h"
#include "agent/config.h"
#include "guard/datapath.h"
#include "xdp_guard.skel.h"

struct env {
	char dir[64];
	struct zt_config cfg;
	struct zt_datapath *dp;
	struct zt_blocklist *bl;
};

static void start(struct env *e)
{
	char err[512];

	assert_int_equal(zt_datapath_init(&e->dp, &e->cfg, err, sizeof(err)), 0);
	assert_int_equal(zt_blocklist_init(&e->bl, e->dp, err, sizeof(err)), 0);
}

static void stop(struct env *e)
{
	zt_blocklist_stop(e->bl);
	zt_datapath_stop(e->dp);
	e->bl = NULL;
	e->dp = NULL;
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));

	strcpy(e->dir, "/tmp/zt-bltest-XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	assert_int_equal(mount("bpf", e->dir, "bpf", 0, "mode=0700"), 0);
	zt_config_defaults(&e->cfg);
	snprintf(e->cfg.bpffs, sizeof(e->cfg.bpffs), "%s/ztagent", e->dir);
	e->cfg.xdp.blocklist_max = 64;
	e->cfg.xdp.allowlist_max = 16;
	e->cfg.xdp.ringbuf_bytes = 4096;
	zt_log_set_level(ZT_LOG_ERROR);
	start(e);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	char err[256];

	stop(e);
	zt_datapath_detach(&e->cfg, err, sizeof(err));
	umount(e->dir);
	rmdir(e->dir);
	free(e);
	return 0;
}

static struct zt_cidr C(const char *s) {
	struct zt_cidr c;

	assert_int_equal(zt_cidr_parse(s, &c, NULL), 0);
	return c;
}

static struct zt_prefix_set
prefixes(struct env *e)
{
	struct zt_prefix_set ps;
	__u32 zero = 0;

	assert_int_equal(
		bpf_map_lookup_elem(bpf_map__fd(e->dp->xdp->maps.blocklist_prefixes), &zero, &ps),
		0);
	return ps;
}

static bool in_map(struct bpf_map *m, const char *cidr)
{
	struct zt_cidr c = C(cidr);
	struct zt_block_entry v;
	uint8_t key[20] = {};

	memcpy(key, &(uint32_t){ c.prefixlen }, 4);
	memcpy(key + 4, c.addr, c.family == AF_INET ? 4 : 16);
	return bpf_map_lookup_elem(bpf_map__fd(m), key, &v) == 0;
}

/* Runs the XDP guard on a UDP packet from src; returns the XDP verdict. */
static int verdict(struct env *e, const char *src)
{
	uint8_t pkt[128] = {};
	struct zt_cidr c = C(src);
	size_t len;
	LIBBPF_OPTS(bpf_test_run_opts, o);

	memcpy(pkt, "\x02\0\0\0\0\x02\x02\0\0\0\0\x01", 12);
	if (c.family == AF_INET) {
		uint8_t *ip = pkt + 14;

		pkt[12] = 0x08;
		ip[0] = 0x45;
		ip[3] = 20 + 8 + 4;
		ip[8] = 64;
		ip[9] = 17;
		memcpy(ip + 12, c.addr, 4);
		memcpy(ip + 16, (uint8_t[]){ 198, 18, 0, 2 }, 4);
		ip[20] = 0x30;
		ip[22] = 0x35;
		ip[25] = 12;
		len = 14 + 20 + 8 + 4;
	} else {
		uint8_t *ip6 = pkt + 14;

		pkt[12] = 0x86;
		pkt[13] = 0xdd;
		ip6[0] = 0x60;
		ip6[5] = 8 + 4;
		ip6[6] = 17;
		ip6[7] = 64;
		memcpy(ip6 + 8, c.addr, 16);
		memcpy(ip6 + 24, (uint8_t[]){ 0x20, 0x01, 0x0d, 0xb8, [15] = 2 }, 16);
		ip6[41] = 0x30;
		ip6[43] = 0x35;
		ip6[45] = 12;
		len = 14 + 40 + 8 + 4;
	}
	o.data_in = pkt;
	o.data_size_in = len;
	o.repeat = 1;
	assert_int_equal(bpf_prog_test_run_opts(bpf_program__fd(e->dp->xdp->progs.xdp_guard), &o),
			 0);
	return o.retval;
}

static uint64_t filter_word(struct env *e, uint32_t w)
{
	uint64_t v = 0;

	assert_int_equal(
		bpf_map_lookup_elem(bpf_map__fd(e->dp->xdp->maps.blocklist_filter), &w, &v), 0);
	return v;
}

static const struct zt_block_req plain = { .reason = ZT_BR_OPERATOR, .source = ZT_BS_MANUAL };

static void test_add_del_publish(void **state)
{
	struct env *e = *state;
	struct zt_cidr c24 = C("198.18.0.0/24"), c32 = C("198.18.0.1"), c6 = C("2001:db8::/48");
	struct zt_prefix_set ps;
	bool replaced = true;
	char err[256];

	assert_int_equal(zt_blocklist_add(e->bl, &c24, &plain, &replaced, err, sizeof(err)), 0);
	assert_false(replaced);
	assert_int_equal(zt_blocklist_add(e->bl, &c32, &plain, &replaced, err, sizeof(err)), 0);
	assert_int_equal(zt_blocklist_add(e->bl, &c6, &plain, &replaced, err, sizeof(err)), 0);
	assert_int_equal(zt_blocklist_add(e->bl, &c32, &plain, &replaced, err, sizeof(err)), 0);
	assert_true(replaced);
	assert_true(in_map(e->dp->xdp->maps.blocklist_v4, "198.18.0.0/24"));
	assert_true(in_map(e->dp->xdp->maps.blocklist_v6, "2001:db8::/48"));
	ps = prefixes(e);
	assert_int_equal(ps.v4_count, 2);
	assert_int_equal(ps.v4_lens[0], 32); /* longest first */
	assert_int_equal(ps.v4_lens[1], 24);
	assert_int_equal(ps.v6_count, 1);
	assert_int_equal(ps.v6_lens[0], 48);
	assert_int_equal(zt_blocklist_count(e->bl, 0, false), 2);

	assert_int_equal(zt_blocklist_del(e->bl, &c32), 0);
	assert_int_equal(zt_blocklist_del(e->bl, &c32), -ENOENT);
	ps = prefixes(e);
	assert_int_equal(ps.v4_count, 1);
	assert_int_equal(ps.v4_lens[0], 24);
	assert_false(in_map(e->dp->xdp->maps.blocklist_v4, "198.18.0.1/32"));
}

static void test_trie_overflow(void **state)
{
	struct env *e = *state;
	struct zt_prefix_set ps;
	char err[256], s[32];
	bool r;

	/* 17 distinct lengths: 16 are hashed, the 17th goes to the trie. */
	for (int len = 8; len <= 24; len++) {
		struct zt_cidr c;

		snprintf(s, sizeof(s), "198.18.0.0/%d", len);
		c = C(s);
		assert_int_equal(zt_blocklist_add(e->bl, &c, &plain, &r, err, sizeof(err)), 0);
	}
	ps = prefixes(e);
	assert_int_equal(ps.v4_count, ZT_MAX_HASHED_LENS);
	assert_int_equal(ps.v4_lpm_used, 1);
	assert_int_equal(zt_blocklist_count(e->bl, 0, true), 1);
	assert_true(in_map(e->dp->xdp->maps.blocklist_lpm_v4, "198.18.0.0/24"));
	/* Deleting the trie's only entry switches the trie lookup off. */
	struct zt_cidr c24 = C("198.18.0.0/24");
	assert_int_equal(zt_blocklist_del(e->bl, &c24), 0);
	ps = prefixes(e);
	assert_int_equal(ps.v4_lpm_used, 0);
	assert_int_equal(ps.v4_count, ZT_MAX_HASHED_LENS);
}

static uint32_t entry_plen(struct bpf_map *m, const char *cidr)
{
	struct zt_cidr c = C(cidr);
	struct zt_block_entry v;
	uint8_t key[20] = {};

	memcpy(key, &(uint32_t){ c.prefixlen }, 4);
	memcpy(key + 4, c.addr, c.family == AF_INET ? 4 : 16);
	assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(m), key, &v), 0);
	return v.prefixlen;
}

/*
 * The case reported: /17 to /32 fill the hashed lengths, so /15 (no TTL)
 * and /16 (short TTL) land in the trie. Once the /16 has expired, a source
 * inside both is still dropped, by the /15 (before the fix it passed until
 * the daemon's sweep removed the /16). An entry pinned by an older agent,
 * without its length, gets it at start.
 */
static void test_expired_trie_entry_hides_nothing(void **state)
{
	struct env *e = *state;
	struct zt_block_req ttl = plain;
	struct zt_cidr c15 = C("198.18.0.0/15"), c16 = C("198.19.0.0/16");
	struct bpf_map *trie = e->dp->xdp->maps.blocklist_lpm_v4;
	struct zt_block_entry v;
	uint8_t key[8] = {};
	char err[256], s[32];
	bool r;

	for (int len = 17; len <= 32; len++) {
		struct zt_cidr c;

		snprintf(s, sizeof(s), "198.18.0.0/%d", len);
		c = C(s);
		assert_int_equal(zt_blocklist_add(e->bl, &c, &plain, &r, err, sizeof(err)), 0);
	}
	ttl.ttl_ns = 20000000ULL; /* 20 ms */
	assert_int_equal(zt_blocklist_add(e->bl, &c15, &plain, &r, err, sizeof(err)), 0);
	assert_int_equal(zt_blocklist_add(e->bl, &c16, &ttl, &r, err, sizeof(err)), 0);
	assert_int_equal(zt_blocklist_count(e->bl, 0, true), 2);
	assert_int_equal(entry_plen(trie, "198.18.0.0/15"), 15);
	assert_int_equal(entry_plen(trie, "198.19.0.0/16"), 16);
	assert_int_equal(entry_plen(e->dp->xdp->maps.blocklist_v4, "198.18.0.0/24"), 24);
	assert_int_equal(verdict(e, "198.19.1.1"), XDP_DROP);
	usleep(30000);
	/* The /16 has expired and is still in the map (no sweep ran). A trie
	 * lookup answers with the longest match: the /16 itself while it is there. */
	assert_int_equal(entry_plen(trie, "198.19.0.0/16"), 16);
	assert_int_equal(verdict(e, "198.19.1.1"), XDP_DROP);

	/* As an older agent left it: no length in the value. */
	memcpy(key, &(uint32_t){ 16 }, 4);
	memcpy(key + 4, c16.addr, 4);
	assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(trie), key, &v), 0);
	v.prefixlen = 0;
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(trie), key, &v, BPF_EXIST), 0);
	stop(e);
	start(e);
	trie = e->dp->xdp->maps.blocklist_lpm_v4; /* a new skeleton */
	assert_int_equal(entry_plen(trie, "198.19.0.0/16"), 16);
	assert_int_equal(verdict(e, "198.19.1.1"), XDP_DROP);
	/* Expiry removes the /16; the /15 stays and still blocks. */
	assert_int_equal(zt_blocklist_expire(e->bl, zt_now_boot_ns()), 1);
	assert_int_equal(entry_plen(trie, "198.19.0.0/16"), 15);
	assert_int_equal(verdict(e, "198.19.1.1"), XDP_DROP);
	assert_int_equal(verdict(e, "198.20.1.1"), XDP_PASS);
}

static void test_import_all_or_nothing(void **state)
{
	struct env *e = *state;
	struct zt_cidr cs[80];
	size_t added, replaced;
	char err[512] = "";

	for (int i = 0; i < 80; i++) {
		char s[32];

		snprintf(s, sizeof(s), "198.18.1.%d", i);
		cs[i] = C(s);
	}
	/* 80 > capacity 64: refused, and nothing changed. */
	assert_int_equal(
		zt_blocklist_import(e->bl, cs, 80, &plain, &added, &replaced, err, sizeof(err)),
		-ENOSPC);
	assert_non_null(strstr(err, "capacity is 64"));
	assert_int_equal(zt_blocklist_count(e->bl, 0, false), 0);
	assert_false(in_map(e->dp->xdp->maps.blocklist_v4, "198.18.1.0/32"));
	assert_int_equal(prefixes(e).v4_count, 0);

	/* 60 fit; a duplicate inside the request counts as replaced. */
	cs[59] = cs[0];
	assert_int_equal(
		zt_blocklist_import(e->bl, cs, 60, &plain, &added, &replaced, err, sizeof(err)), 0);
	assert_int_equal(added, 59);
	assert_int_equal(replaced, 1);
	assert_int_equal(zt_blocklist_count(e->bl, 0, false), 59);
	assert_true(in_map(e->dp->xdp->maps.blocklist_v4, "198.18.1.58/32"));
}

static void test_expiry(void **state)
{
	struct env *e = *state;
	struct zt_block_req ttl = plain;
	struct zt_cidr a = C("198.18.2.0/25"), b = C("198.18.3.3");
	char err[256];
	bool r;

	ttl.ttl_ns = 20000000ULL; /* 20 ms */
	assert_int_equal(zt_blocklist_add(e->bl, &a, &ttl, &r, err, sizeof(err)), 0);
	assert_int_equal(zt_blocklist_add(e->bl, &b, &plain, &r, err, sizeof(err)), 0);
	assert_int_equal(zt_blocklist_expire(e->bl, zt_now_boot_ns()), 0);
	usleep(30000);
	assert_int_equal(zt_blocklist_expire(e->bl, zt_now_boot_ns()), 1);
	assert_false(in_map(e->dp->xdp->maps.blocklist_v4, "198.18.2.0/25"));
	assert_true(in_map(e->dp->xdp->maps.blocklist_v4, "198.18.3.3/32"));
	assert_int_equal(prefixes(e).v4_count, 1); /* /25 unpublished */
}

static void test_restart_rebuilds(void **state)
{
	struct env *e = *state;
	struct zt_cidr cs[3] = { C("198.18.4.0/24"), C("2001:db8:1::/64"), C("198.18.5.5") };
	struct zt_cidr allow = C("198.18.4.7");
	size_t added, replaced;
	char err[256];

	assert_int_equal(
		zt_blocklist_import(e->bl, cs, 3, &plain, &added, &replaced, err, sizeof(err)), 0);
	assert_int_equal(zt_allowlist_add(e->bl, &allow, "trusted"), 0);
	assert_int_equal(prefixes(e).allow_v4_used, 1);
	assert_int_equal(prefixes(e).allow_v6_used, 0);
	stop(e);
	start(e); /* over the same pins */
	assert_true(e->dp->n_reused > 0);
	assert_int_equal(zt_blocklist_count(e->bl, 0, false), 2);
	assert_int_equal(zt_blocklist_count(e->bl, 1, false), 1);
	assert_int_equal(prefixes(e).allow_v4_used, 1);
	/* The rebuilt mirror knows the entries: re-adding one is a replace. */
	assert_int_equal(
		zt_blocklist_import(e->bl, cs, 1, &plain, &added, &replaced, err, sizeof(err)), 0);
	assert_int_equal(replaced, 1);
	assert_int_equal(zt_allowlist_del(e->bl, &allow), 0);
	assert_int_equal(prefixes(e).allow_v4_used, 0);
	assert_int_equal(zt_allowlist_del(e->bl, &allow), -ENOENT);
}

/* What the daemon writes is what the XDP program enforces, through the prefilter. */
static void test_enforced_through_filter(void **state)
{
	struct env *e = *state;
	struct zt_cidr a = C("198.18.0.0/24"), b = C("2001:db8::/48"), w8 = C("100.0.0.0/8");
	struct zt_cidr s6 = C("3fff::/16");
	struct zt_prefix_set ps;
	char err[256];
	bool r;

	assert_int_equal(verdict(e, "198.18.0.9"), XDP_PASS);
	assert_int_equal(zt_blocklist_add(e->bl, &a, &plain, &r, err, sizeof(err)), 0);
	assert_int_equal(zt_blocklist_add(e->bl, &b, &plain, &r, err, sizeof(err)), 0);
	ps = prefixes(e);
	assert_int_equal(ps.filter_v4_on, 1);
	assert_int_equal(ps.filter_v6_on, 1);
	assert_int_equal(verdict(e, "198.18.0.9"), XDP_DROP);
	assert_int_equal(verdict(e, "198.18.1.9"), XDP_PASS); /* same /16, no entry */
	assert_int_equal(verdict(e, "198.19.0.9"), XDP_PASS); /* filtered out */
	assert_int_equal(verdict(e, "2001:db8::5"), XDP_DROP);
	assert_int_equal(verdict(e, "2001:db8:1::5"), XDP_PASS);
	assert_int_equal(verdict(e, "2001:db9::5"), XDP_PASS);
	/* An IPv4 prefix shorter than /16 sets every /16 bit it covers. */
	assert_int_equal(zt_blocklist_add(e->bl, &w8, &plain, &r, err, sizeof(err)), 0);
	assert_int_equal(verdict(e, "100.200.3.4"), XDP_DROP);
	assert_int_equal(verdict(e, "100.0.0.1"), XDP_DROP);
	assert_int_equal(verdict(e, "101.0.0.1"), XDP_PASS);
	/* A /20 sets the one /16 it lies in: a neighbour /20 in it pays the lookups but passes. */
	struct zt_cidr w20 = C("203.0.112.0/20");
	assert_int_equal(zt_blocklist_add(e->bl, &w20, &plain, &r, err, sizeof(err)), 0);
	assert_int_equal(verdict(e, "203.0.113.77"), XDP_DROP);
	assert_int_equal(verdict(e, "203.0.200.1"), XDP_PASS);
	assert_int_equal(zt_blocklist_del(e->bl, &w20), 0);
	assert_int_equal(verdict(e, "203.0.113.77"), XDP_PASS);
	/* An IPv6 prefix shorter than /32 switches the IPv6 filter off, and back. */
	assert_int_equal(zt_blocklist_add(e->bl, &s6, &plain, &r, err, sizeof(err)), 0);
	assert_int_equal(prefixes(e).filter_v6_on, 0);
	assert_int_equal(verdict(e, "3fff:1234::1"), XDP_DROP);
	assert_int_equal(verdict(e, "2001:db8::5"), XDP_DROP);
	assert_int_equal(zt_blocklist_del(e->bl, &s6), 0);
	assert_int_equal(prefixes(e).filter_v6_on, 1);
	assert_int_equal(verdict(e, "3fff:1234::1"), XDP_PASS);
	/* The last entry of a bucket gone: its bit is clear again. */
	uint32_t bk = zt_filter_v4_bucket(a.addr);
	assert_int_equal(filter_word(e, bk >> 6) >> (bk & 63) & 1, 1);
	assert_int_equal(zt_blocklist_del(e->bl, &a), 0);
	assert_int_equal(filter_word(e, bk >> 6) >> (bk & 63) & 1, 0);
	assert_int_equal(verdict(e, "198.18.0.9"), XDP_PASS);
	/* After the /8 goes, no bit is left set at all (only the /48 in IPv6 remains). */
	assert_int_equal(zt_blocklist_del(e->bl, &w8), 0);
	for (uint32_t w = 0; w < ZT_FILTER_V4_WORDS; w++)
		if (filter_word(e, w))
			fail_msg("IPv4 /24 filter word %u still set", w);
	for (uint32_t w = ZT_FILTER_V16_BASE; w < ZT_FILTER_WORDS; w++)
		if (filter_word(e, w))
			fail_msg("IPv4 /16 filter word %u still set", w);
	/* An IPv4 prefix shorter than /8 switches the IPv4 filter off, and back. */
	struct zt_cidr s4 = C("64.0.0.0/2");
	assert_int_equal(zt_blocklist_add(e->bl, &s4, &plain, &r, err, sizeof(err)), 0);
	assert_int_equal(prefixes(e).filter_v4_on, 0);
	assert_int_equal(verdict(e, "100.1.2.3"), XDP_DROP);
	assert_int_equal(zt_blocklist_del(e->bl, &s4), 0);
	assert_int_equal(prefixes(e).filter_v4_on, 1);
	assert_int_equal(verdict(e, "100.1.2.3"), XDP_PASS);
	/* A restart rewrites the filter from the pins: still enforced. */
	stop(e);
	start(e);
	assert_int_equal(verdict(e, "2001:db8::5"), XDP_DROP);
	assert_int_equal(verdict(e, "100.200.3.4"), XDP_PASS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_add_del_publish, setup, teardown),
		cmocka_unit_test_setup_teardown(test_trie_overflow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expired_trie_entry_hides_nothing, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_import_all_or_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_rebuilds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_enforced_through_filter, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
