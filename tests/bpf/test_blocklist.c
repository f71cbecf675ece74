// SPDX-License-Identifier: GPL-2.0-only
/*
 * The daemon's blocklist module against real kernel maps: what it writes is
 * what the XDP program reads (entries, published prefix lengths, trie
 * overflow, allowlist flags), imports are all or nothing, expiry removes
 * entries (in slices, only expired ones, audited in bulk), a restart
 * rebuilds the mirror from the pins, listings through the real API
 * server come in pages that list every entry once, and a detector's block
 * decided off the loop thread is in the maps at once while the loop thread
 * is busy, also while that thread changes the blocklist itself.
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
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include "guard/blocklist.h"
#include "agent/api.h"
#include "agent/apimsg.h"
#include "agent/apiops.h"
#include "agent/config.h"
#include "agent/loop.h"
#include "guard/datapath.h"
#include "guard/drift.h"
#include "respond/actions.h"
#include "xdp_guard.skel.h"
#include "private_mounts.h"

/* Audit events as the blocklist posts them. */
struct audit_log {
	pthread_mutex_t lock;
	size_t events[4]; /* block.add, block.del, block.expire, block.import */
	size_t other;
	char **cidrs; /* from the "cidrs" lists of bulk events */
	size_t ncidrs, cap;
	char last_detail[512];
};

struct env {
	char dir[64];
	struct zt_config cfg;
	struct zt_datapath *dp;
	struct zt_blocklist *bl;
	struct audit_log au;
	/* the API server, for the listing tests */
	char sockdir[64], sock[96];
	struct zt_loop *loop;
	struct zt_api *api;
	pthread_t thread;
	int stop;
	bool running;
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

static void on_audit(void *ctx, const char *kind, const char *subject, const char *detail)
{
	static const char *const kinds[] = { "block.add", "block.del", "block.expire",
					     "block.import" };
	struct audit_log *a = ctx;
	const char *p = strstr(detail, "\"cidrs\":[");
	bool known = false;

	pthread_mutex_lock(&a->lock);
	for (int i = 0; i < 4; i++)
		if (!strcmp(kind, kinds[i])) {
			a->events[i]++;
			known = true;
		}
	a->other += !known;
	snprintf(a->last_detail, sizeof(a->last_detail), "%s", detail);
	/* "cidrs":["a","b",...]: CIDRs need no escapes. */
	for (p = p ? strchr(p, '[') + 1 : NULL; p && *p == '"';) {
		const char *q = strchr(p + 1, '"');

		if (a->ncidrs == a->cap) {
			a->cap = a->cap ? a->cap * 2 : 1024;
			a->cidrs = realloc(a->cidrs, a->cap * sizeof(*a->cidrs));
			assert_non_null(a->cidrs);
		}
		a->cidrs[a->ncidrs++] = strndup(p + 1, q - p - 1);
		p = q[1] == ',' ? q + 2 : NULL;
	}
	pthread_mutex_unlock(&a->lock);
}

static void audit_reset(struct audit_log *a)
{
	for (size_t i = 0; i < a->ncidrs; i++)
		free(a->cidrs[i]);
	free(a->cidrs);
	a->cidrs = NULL;
	a->ncidrs = a->cap = 0;
	memset(a->events, 0, sizeof(a->events));
	a->other = 0;
}

static int setup_sized(void **state, uint32_t block_max, uint32_t allow_max)
{
	struct env *e = calloc(1, sizeof(*e));

	strcpy(e->dir, "/tmp/zt-bltest-XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	assert_int_equal(mount("bpf", e->dir, "bpf", 0, "mode=0700"), 0);
	zt_config_defaults(&e->cfg);
	snprintf(e->cfg.bpffs, sizeof(e->cfg.bpffs), "%s/ztagent", e->dir);
	e->cfg.xdp.blocklist_max = block_max;
	e->cfg.xdp.allowlist_max = allow_max;
	e->cfg.xdp.ringbuf_bytes = 4096;
	zt_log_set_level(ZT_LOG_ERROR);
	pthread_mutex_init(&e->au.lock, NULL);
	start(e);
	zt_blocklist_set_audit(e->bl, on_audit, &e->au);
	*state = e;
	return 0;
}

static int setup(void **state)
{
	return setup_sized(state, 64, 16);
}

/* Maps for the bulk tests: 262144 entries per family, 8192 allowlist entries. */
static int setup_big(void **state)
{
	return setup_sized(state, 262144, 8192);
}

static void *loop_thread(void *arg)
{
	struct env *e = arg;

	while (!__atomic_load_n(&e->stop, __ATOMIC_SEQ_CST))
		zt_loop_run_once(e->loop, 20);
	return NULL;
}

/* The blocklist's API operations on a real socket, served by a loop thread as in the daemon. */
static int setup_api(void **state)
{
	struct env *e;
	char err[256] = "";

	setup_big(state);
	e = *state;
	strcpy(e->sockdir, "/tmp/zt-blsock-XXXXXX");
	assert_non_null(mkdtemp(e->sockdir));
	snprintf(e->sock, sizeof(e->sock), "%s/api.sock", e->sockdir);
	assert_int_equal(zt_loop_init(&e->loop), 0);
	if (zt_api_init(&e->api, e->loop, e->sock, err, sizeof(err)) < 0)
		fail_msg("zt_api_init: %s", err);
	assert_int_equal(zt_blocklist_register_api(e->bl, e->api), 0);
	assert_int_equal(pthread_create(&e->thread, NULL, loop_thread, e), 0);
	e->running = true;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	char err[256];

	if (e->running) {
		__atomic_store_n(&e->stop, 1, __ATOMIC_SEQ_CST);
		pthread_join(e->thread, NULL);
	}
	zt_api_stop(e->api);
	zt_loop_stop(e->loop);
	if (e->sockdir[0])
		rmdir(e->sockdir);
	audit_reset(&e->au);
	pthread_mutex_destroy(&e->au.lock);
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

	/* The clock is the caller's: "now" before the add, and 10 s later. */
	uint64_t t0 = zt_now_boot_ns();

	ttl.ttl_ns = 20000000ULL; /* 20 ms */
	assert_int_equal(zt_blocklist_add(e->bl, &a, &ttl, &r, err, sizeof(err)), 0);
	assert_int_equal(zt_blocklist_add(e->bl, &b, &plain, &r, err, sizeof(err)), 0);
	assert_int_equal(zt_blocklist_expire(e->bl, t0), 0);
	assert_int_equal(zt_blocklist_expire(e->bl, t0 + 10000000000ULL), 1);
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

/* ---- bulk expiry ---- */

static struct zt_cidr v4(uint32_t a, uint8_t plen)
{
	struct zt_cidr c = { .family = AF_INET, .prefixlen = plen };

	c.addr[0] = a >> 24;
	c.addr[1] = a >> 16;
	c.addr[2] = a >> 8;
	c.addr[3] = a;
	return c;
}

static void import_ok(struct env *e, const struct zt_cidr *cs, size_t n,
		      const struct zt_block_req *r)
{
	size_t added, replaced;
	char err[512] = "";

	if (zt_blocklist_import(e->bl, cs, n, r, &added, &replaced, err, sizeof(err)) < 0)
		fail_msg("import of %zu: %s", n, err);
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorts the audited CIDRs; fails on a duplicate; returns how many. */
static size_t audited_unique(struct env *e)
{
	qsort(e->au.cidrs, e->au.ncidrs, sizeof(char *), str_cmp);
	for (size_t i = 1; i < e->au.ncidrs; i++)
		if (!strcmp(e->au.cidrs[i - 1], e->au.cidrs[i]))
			fail_msg("%s audited twice", e->au.cidrs[i]);
	return e->au.ncidrs;
}

#define NEXP 100000

/*
 * 100k entries expiring at once go in slices of at most 65536 (the first far
 * fewer), with the maps consistent between slices: what has not expired
 * still drops. Each removal is audited once, in bulk events.
 */
static void test_expiry_in_slices(void **state)
{
	struct env *e = *state;
	struct zt_block_req soon = plain, late = plain;
	struct zt_cidr *cs = calloc(NEXP, sizeof(*cs));
	size_t total = 0, calls = 0, first = 0;
	uint64_t later = zt_now_boot_ns() + 10000000000ULL; /* "now" for expiry: 10 s on */

	soon.ttl_ns = 50000000ULL;
	late.ttl_ns = 3600000000000ULL;
	for (uint32_t i = 0; i < NEXP; i++)
		cs[i] = v4(0x0a000000 + i, 32); /* 10.0.0.0 ... */
	import_ok(e, cs, NEXP, &soon);
	for (uint32_t i = 0; i < 256; i++)
		cs[i] = v4(0x0c000000 + i, 32); /* 12.0.0.x, inside a /24 that stays */
	import_ok(e, cs, 256, &soon);
	cs[0] = v4(0x0c000000, 24);
	cs[1] = v4(0x0c000100, 24);
	import_ok(e, cs, 2, &late);
	for (uint32_t i = 0; i < 1000; i++)
		cs[i] = v4(0x0b000000 + i * 7, 32); /* 11.0.x.y, no expiry */
	import_ok(e, cs, 1000, &plain);
	free(cs);
	do {
		size_t r = zt_blocklist_expire(e->bl, later);

		if (!calls++)
			first = r;
		assert_true(r <= 65536);
		total += r;
		/* Between slices, what must drop still drops. */
		assert_int_equal(verdict(e, "11.0.0.7"), XDP_DROP);
		assert_int_equal(verdict(e, "12.0.1.9"), XDP_DROP);
	} while (zt_blocklist_expire_pending(e->bl) && calls < 1000000);
	assert_true(first > 0 && first < NEXP);
	assert_int_equal(total, NEXP + 256);
	assert_int_equal(zt_blocklist_count(e->bl, 0, false), 1002);
	assert_false(in_map(e->dp->xdp->maps.blocklist_v4, "10.0.0.1/32"));
	assert_false(in_map(e->dp->xdp->maps.blocklist_v4, "10.1.134.159/32"));
	assert_false(in_map(e->dp->xdp->maps.blocklist_v4, "12.0.0.5/32"));
	assert_true(in_map(e->dp->xdp->maps.blocklist_v4, "12.0.0.0/24"));
	assert_true(in_map(e->dp->xdp->maps.blocklist_v4, "11.0.0.7/32"));
	assert_int_equal(verdict(e, "10.0.0.1"), XDP_PASS);
	assert_int_equal(verdict(e, "12.0.0.5"), XDP_DROP);
	assert_int_equal(prefixes(e).v4_count, 2);
	/* Audited once each, 8192 to an event, not one event per entry. */
	assert_int_equal(audited_unique(e), NEXP + 256);
	assert_true(e->au.events[2] >= (NEXP + 256 + 8191) / 8192);
	assert_true(e->au.events[2] <= calls + (NEXP + 256) / 8192);
	assert_non_null(strstr(e->au.last_detail, "\"why\":\"ttl\""));
	assert_int_equal(zt_blocklist_expire(e->bl, later), 0);
}

/* Drives zt_blocklist_expire until it has nothing more to do at now; returns what it removed. */
static size_t expire_all(struct env *e, uint64_t now)
{
	size_t total = 0;

	do
		total += zt_blocklist_expire(e->bl, now);
	while (zt_blocklist_expire_pending(e->bl));
	return total;
}

/*
 * Changes while a sweep is under way: an entry renewed before the sweep
 * reached it stays, a new entry with a TTL is removed when its time comes
 * (the sweep's next expiry knows it), and the mirror growing under the
 * sweep loses nothing.
 */
static void test_expiry_changes_mid_sweep(void **state)
{
	struct env *e = *state;
	struct zt_block_req soon = plain, hour = plain, day = plain;
	struct zt_cidr *cs = calloc(150000, sizeof(*cs)), renewed, nx = C("13.0.0.1");
	uint64_t t0 = zt_now_boot_ns(), t1;
	size_t gone;
	char s[32];

	soon.ttl_ns = 20000000ULL;
	hour.ttl_ns = 3600000000000ULL;
	day.ttl_ns = 86400000000000ULL;
	for (uint32_t i = 0; i < NEXP; i++)
		cs[i] = v4(0x0a000000 + i, 32);
	import_ok(e, cs, NEXP, &soon);
	gone = zt_blocklist_expire(e->bl, t0 + 10000000000ULL);
	assert_true(gone > 0 && gone < NEXP);
	assert_true(zt_blocklist_expire_pending(e->bl));
	/* Renew one the sweep has not reached yet. */
	for (uint32_t i = NEXP;; i--) {
		renewed = v4(0x0a000000 + i - 1, 32);
		zt_cidr_format(&renewed, s, sizeof(s));
		if (in_map(e->dp->xdp->maps.blocklist_v4, s))
			break;
	}
	import_ok(e, &renewed, 1, &day);
	import_ok(e, &nx, 1, &hour);
	for (uint32_t i = 0; i < 150000; i++) {
		cs[i] = (struct zt_cidr){ .family = AF_INET6, .prefixlen = 64 };
		memcpy(cs[i].addr, (uint8_t[]){ 0x20, 0x01, 0x0d, 0xb8, 1, i >> 16, i >> 8, i }, 8);
	}
	import_ok(e, cs, 150000, &plain); /* the mirror grows */
	free(cs);
	gone += expire_all(e, t0 + 10000000000ULL);
	assert_int_equal(gone, NEXP - 1);
	assert_true(in_map(e->dp->xdp->maps.blocklist_v4, s));
	assert_true(in_map(e->dp->xdp->maps.blocklist_v4, "13.0.0.1/32"));
	assert_int_equal(zt_blocklist_count(e->bl, 1, false), 150000);
	/* Two hours on: the hour's entry goes, the day's stays. */
	t1 = zt_now_boot_ns() + 7200000000000ULL;
	assert_int_equal(expire_all(e, t1), 1);
	assert_false(in_map(e->dp->xdp->maps.blocklist_v4, "13.0.0.1/32"));
	assert_true(in_map(e->dp->xdp->maps.blocklist_v4, s));
	assert_int_equal(audited_unique(e), NEXP);
}

/* ---- through the API ---- */

static int api_connect(struct env *e)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 30 };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", e->sock);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

/* Sends req (consumed); returns the reply; *data is its "data" when ok. */
static cbor_item_t *api_call(int fd, cbor_item_t *req, bool *ok, const cbor_item_t **data)
{
	cbor_item_t *rep = NULL;
	char err[256] = "";

	assert_int_equal(zt_msg_send(fd, req), 0);
	cbor_decref(&req);
	if (zt_msg_recv(fd, &rep, err, sizeof(err)) < 0)
		fail_msg("zt_msg_recv: %s", err);
	*ok = false;
	zt_cbor_get_bool(rep, "ok", ok);
	*data = zt_cbor_get(rep, "data");
	return rep;
}

static void api_ok(int fd, cbor_item_t *req)
{
	const cbor_item_t *d;
	bool ok;
	cbor_item_t *rep = api_call(fd, req, &ok, &d);

	if (!ok) {
		char msg[256] = "";

		zt_cbor_get_str(rep, "error", msg, sizeof(msg));
		fail_msg("refused: %s", msg);
	}
	cbor_decref(&rep);
}

static cbor_item_t *req_of(const char *op)
{
	cbor_item_t *m = zt_cbor_map();

	assert_non_null(m);
	assert_int_equal(zt_cbor_put_str(m, "op", op), 0);
	return m;
}

/* block.import of cs as packed records, with the given fields. */
static void api_import(int fd, const struct zt_cidr *cs, size_t n, uint64_t ttl_s)
{
	cbor_item_t *req = req_of(ZT_OP_BLOCK_IMPORT), *b;
	uint8_t *packed = calloc(n, ZT_PACKED_CIDR_LEN);

	for (size_t i = 0; i < n; i++) {
		uint8_t *r = packed + i * ZT_PACKED_CIDR_LEN;

		r[0] = cs[i].family == AF_INET ? 4 : 6;
		r[1] = cs[i].prefixlen;
		memcpy(r + 2, cs[i].addr, 16);
	}
	b = cbor_build_bytestring(packed, n * ZT_PACKED_CIDR_LEN);
	free(packed);
	assert_int_equal(zt_cbor_put(req, "packed", b), 0);
	assert_int_equal(zt_cbor_put_u64(req, "ttl_s", ttl_s), 0);
	assert_int_equal(zt_cbor_put_str(req, "kind", "threat-intel"), 0);
	assert_int_equal(zt_cbor_put_str(req, "source", "feed"), 0);
	assert_int_equal(zt_cbor_put_u64(req, "feed_id", 7), 0);
	assert_int_equal(zt_cbor_put_str(req, "reason", "drop list"), 0);
	api_ok(fd, req);
}

/* An import is audited in bulk: 8192 CIDRs to an event, each written entry once. */
static void test_api_import_audited_in_bulk(void **state)
{
	struct env *e = *state;
	struct zt_cidr *cs = calloc(20000, sizeof(*cs));
	int fd = api_connect(e);
	char want[32];

	for (uint32_t i = 0; i < 20000; i++)
		cs[i] = v4(0x0a000000 + i * 3, 32);
	api_import(fd, cs, 20000, 3600);
	free(cs);
	close(fd);
	assert_int_equal(e->au.events[3], 3); /* block.import: 8192 + 8192 + 3616 */
	assert_int_equal(e->au.events[0], 0);
	assert_int_equal(audited_unique(e), 20000);
	for (uint32_t i = 0; i < 20000; i += 997) {
		struct zt_cidr c = v4(0x0a000000 + i * 3, 32);
		char *key = want;

		zt_cidr_format(&c, want, sizeof(want));
		assert_non_null(bsearch(&key, e->au.cidrs, e->au.ncidrs, sizeof(char *), str_cmp));
	}
	assert_non_null(strstr(e->au.last_detail, "\"ttl_s\":3600"));
	assert_non_null(strstr(e->au.last_detail, "\"kind\":\"threat-intel\""));
	assert_non_null(strstr(e->au.last_detail, "\"source\":\"feed\""));
	assert_non_null(strstr(e->au.last_detail, "\"reason\":\"drop list\""));
}

/* Index of an entry this test made, from its CIDR text; -1 if none. */
static long entry_index(const char *cidr, uint32_t base_hi)
{
	unsigned int a, b, c, d, p;

	if (sscanf(cidr, "%u.%u.%u.%u/%u", &a, &b, &c, &d, &p) != 5 || p != 32 || a != base_hi)
		return -1;
	return (long)(b << 16 | c << 8 | d);
}

/*
 * A listing in pages, with deletes, imports and growth of the mirror
 * between the pages: every entry there from start to end is listed exactly
 * once, none twice.
 */
static void test_api_block_list_pages(void **state)
{
	struct env *e = *state;
	enum { N = 20000, ADD = 30 };
	struct zt_cidr *cs = calloc(N, sizeof(*cs)), add[ADD];
	uint8_t *seen = calloc(N, 1), *dead = calloc(N, 1), *seen_new = calloc(1 << 16, 1);
	uint8_t cursor[64];
	size_t cursor_len = 0, pages = 0, added = 0;
	int fd = api_connect(e);
	const cbor_item_t *d;
	cbor_item_t *rep;
	bool ok;

	for (uint32_t i = 0; i < N; i++)
		cs[i] = v4(0x0a000000 + i, 32);
	api_import(fd, cs, N, 0);
	/*
	 * Without a cursor: the first page, at most 2048 entries (fewer when
	 * their lookups took over the page's time budget, never under 64), and
	 * where to go on.
	 */
	rep = api_call(fd, req_of(ZT_OP_BLOCK_LIST), &ok, &d);
	assert_true(ok);
	assert_in_range(cbor_array_size(zt_cbor_get(d, "entries")), 64, 2048);
	assert_non_null(zt_cbor_get(d, "next"));
	{
		uint64_t total = 0;

		assert_int_equal(zt_cbor_get_u64(d, "total", &total), 0);
		assert_int_equal(total, N);
	}
	cbor_decref(&rep);
	for (;;) {
		cbor_item_t *req = req_of(ZT_OP_BLOCK_LIST), *next, *arr;

		assert_int_equal(zt_cbor_put_u64(req, "limit", 97), 0);
		if (cursor_len)
			assert_int_equal(zt_cbor_put(req, "cursor",
						     cbor_build_bytestring(cursor, cursor_len)),
					 0);
		rep = api_call(fd, req, &ok, &d);
		assert_true(ok);
		arr = zt_cbor_get(d, "entries");
		assert_true(cbor_array_size(arr) <= 97);
		for (size_t i = 0; i < cbor_array_size(arr); i++) {
			char cidr[64];
			long k;

			assert_int_equal(zt_cbor_get_str(cbor_array_handle(arr)[i], "cidr", cidr,
							 sizeof(cidr)),
					 0);
			if ((k = entry_index(cidr, 10)) >= 0) {
				assert_true(k < N);
				if (seen[k]++)
					fail_msg("%s listed twice", cidr);
			} else if ((k = entry_index(cidr, 14)) >= 0) {
				if (seen_new[k]++)
					fail_msg("%s listed twice", cidr);
			} else {
				fail_msg("%s was never added", cidr);
			}
		}
		next = zt_cbor_get(d, "next");
		cursor_len = next ? cbor_bytestring_length(next) : 0;
		assert_true(cursor_len <= sizeof(cursor));
		if (next)
			memcpy(cursor, cbor_bytestring_handle(next), cursor_len);
		cbor_decref(&rep);
		if (!cursor_len)
			break;
		pages++;
		/* Between pages: one entry goes, 30 arrive (the mirror grows past 22938). */
		{
			uint32_t j = (uint32_t)(pages * 7919) % N;
			char s[32];

			if (!dead[j]) {
				cbor_item_t *del = req_of(ZT_OP_BLOCK_DEL);
				struct zt_cidr c = v4(0x0a000000 + j, 32);

				zt_cidr_format(&c, s, sizeof(s));
				assert_int_equal(zt_cbor_put_str(del, "cidr", s), 0);
				api_ok(fd, del);
				dead[j] = 1;
			}
			for (int a = 0; a < ADD; a++)
				add[a] = v4(0x0e000000 + (uint32_t)added++, 32);
			api_import(fd, add, ADD, 0);
		}
	}
	close(fd);
	assert_true(pages > 100);
	for (uint32_t i = 0; i < N; i++)
		if (!dead[i] && seen[i] != 1)
			fail_msg("10.x entry %u listed %u times", i, seen[i]);
	/* A cursor that is not one is refused, saying which field. */
	fd = api_connect(e);
	{
		cbor_item_t *req = req_of(ZT_OP_BLOCK_LIST);
		char msg[256] = "";

		assert_int_equal(
			zt_cbor_put(req, "cursor", cbor_build_bytestring((uint8_t *)"xy", 2)), 0);
		rep = api_call(fd, req, &ok, &d);
		assert_false(ok);
		zt_cbor_get_str(rep, "error", msg, sizeof(msg));
		assert_non_null(strstr(msg, "cursor"));
		cbor_decref(&rep);
	}
	close(fd);
	free(cs);
	free(seen);
	free(dead);
	free(seen_new);
}

/*
 * The allowlist in pages; the entry a cursor names is deleted between
 * pages, so the walk resumes from where it would have been.
 */
static void test_api_allow_list_pages(void **state)
{
	struct env *e = *state;
	enum { N = 3000 };
	uint8_t *seen = calloc(N, 1), *dead = calloc(N, 1);
	uint8_t cursor[64];
	size_t cursor_len = 0, pages = 0;
	char last[64] = "";
	int fd = api_connect(e);

	for (uint32_t i = 0; i < N; i++) {
		cbor_item_t *req = req_of(ZT_OP_ALLOW_ADD);
		char s[64];
		/* /32s and /24s that nest, so the trie has depth. */
		struct zt_cidr c =
			i % 3 ? v4(0x0a000000 + i * 256, 24) : v4(0x0a000000 + i * 256 + 7, 32);

		zt_cidr_format(&c, s, sizeof(s));
		assert_int_equal(zt_cbor_put_str(req, "cidr", s), 0);
		api_ok(fd, req);
	}
	for (;;) {
		cbor_item_t *req = req_of(ZT_OP_ALLOW_LIST), *rep, *arr, *next;
		const cbor_item_t *d;
		bool ok;

		assert_int_equal(zt_cbor_put_u64(req, "limit", 101), 0);
		if (cursor_len)
			assert_int_equal(zt_cbor_put(req, "cursor",
						     cbor_build_bytestring(cursor, cursor_len)),
					 0);
		rep = api_call(fd, req, &ok, &d);
		assert_true(ok);
		arr = zt_cbor_get(d, "entries");
		assert_true(cbor_array_size(arr) <= 101);
		for (size_t i = 0; i < cbor_array_size(arr); i++) {
			unsigned int a, b, c, x, p;
			uint32_t k;

			assert_int_equal(zt_cbor_get_str(cbor_array_handle(arr)[i], "cidr", last,
							 sizeof(last)),
					 0);
			assert_int_equal(sscanf(last, "%u.%u.%u.%u/%u", &a, &b, &c, &x, &p), 5);
			k = b << 8 | c;
			assert_true(k < N);
			if (seen[k]++)
				fail_msg("%s listed twice", last);
		}
		next = zt_cbor_get(d, "next");
		cursor_len = next ? cbor_bytestring_length(next) : 0;
		assert_true(cursor_len <= sizeof(cursor));
		if (next)
			memcpy(cursor, cbor_bytestring_handle(next), cursor_len);
		cbor_decref(&rep);
		if (!cursor_len)
			break;
		pages++;
		/* The cursor's own entry goes, every other page. */
		if (pages % 2) {
			cbor_item_t *del = req_of(ZT_OP_ALLOW_DEL);
			unsigned int a, b, c, x, p;

			assert_int_equal(sscanf(last, "%u.%u.%u.%u/%u", &a, &b, &c, &x, &p), 5);
			dead[b << 8 | c] = 1;
			assert_int_equal(zt_cbor_put_str(del, "cidr", last), 0);
			api_ok(fd, del);
		}
	}
	close(fd);
	assert_true(pages >= N / 101);
	for (uint32_t i = 0; i < N; i++)
		if (!dead[i] && seen[i] != 1)
			fail_msg("allowlist entry %u listed %u times", i, seen[i]);
	free(seen);
	free(dead);
}

/* ---- detector blocks, decided off the loop thread ---- */

#define DET_HOLD_MS 400
#define DET_N 600 /* detector addresses: 198.18.200.0 .. 198.18.202.87 */
#define DET_CHURN_NS (1500 * 1000000ULL)
#define DET_CHURN_MAX_NS (120 * 1000000000ULL) /* a machine this slow fails the test */

struct det {
	struct env *e;
	struct zt_loop *loop;
	struct zt_actions *act;
	pthread_t thr;
	int stop, ready; /* atomic */
	bool running; /* det_stop not called yet */
	int hold_fd, churn_fd;
	int in_hold; /* atomic: the loop's long callback runs */
	int churning, churned; /* atomic: the loop's blocklist churn runs / ran */
	size_t rounds;
	size_t passes; /* atomic: the detector thread's full passes so far */
	int reports; /* drift reports: mirror and maps differed */
	char last_what[256];
	char churn_err[256];
};

static struct det D;

/* What the daemon's engine hook does (src/agent/daemon.c eng_write_block). */
static int det_write(void *ctx, const struct zt_block_action *a, char *err, size_t errlen)
{
	struct env *e = ctx;
	struct zt_cidr c = { .family = a->family == 6 ? AF_INET6 : AF_INET,
			     .prefixlen = a->family == 6 ? 128 : 32 };
	struct zt_block_req req = {
		.ttl_ns = a->ttl_ns,
		.reason = a->reason,
		.source = ZT_BS_DETECTOR,
		.note = a->note,
	};

	memcpy(c.addr, a->addr, a->family == 6 ? 16 : 4);
	return zt_blocklist_add(e->bl, &c, &req, NULL, err, errlen);
}

static bool det_may(void *ctx, const char *kind)
{
	return false; /* report only: a repair would hide the difference */
}

static void det_report(void *ctx, const char *kind, const char *subject, const char *what,
		       bool repaired, int err)
{
	D.reports++;
	snprintf(D.last_what, sizeof(D.last_what), "%s: %s", subject, what);
}

/* A callback that holds the loop thread (a sweep, a feed step, an API call). */
static void det_hold(void *ctx, int fd, uint32_t events)
{
	struct timespec d = { 0, DET_HOLD_MS * 1000000L };
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0)
		return;
	__atomic_store_n(&D.in_hold, 1, __ATOMIC_SEQ_CST);
	nanosleep(&d, NULL);
	__atomic_store_n(&D.in_hold, 0, __ATOMIC_SEQ_CST);
}

static struct zt_cidr det_addr(size_t i)
{
	return v4((198u << 24) | (18u << 16) | (uint32_t)(200 * 256 + i), 32);
}

/*
 * The loop thread's own writers, for DET_CHURN_NS and at least two rounds
 * of its own and two full passes of the detector thread (a slow or loaded
 * machine stretches the race rather than failing it): a feed adds and removes
 * /32s (some on the detector's addresses), a /24 and a /16 (the prefilter's
 * other buckets), an operator allows and unallows an address (the
 * published flags), expiry runs, the feed's entries are listed, and a
 * drift walk compares maps and mirror (report only).
 */
static void det_churn(void *ctx, int fd, uint32_t events)
{
	struct env *e = D.e;
	struct zt_bl_feed_item items[128 + 16 + 2];
	struct zt_cidr cs[ZT_ARRAY_SIZE(items)], allow = v4(0xC6130001u /* 198.19.0.1 */, 32);
	struct zt_drift_hooks h = { .may = det_may, .report = det_report, .ctx = &D };
	uint64_t t0 = zt_now_mono_ns(), v;
	size_t n = 0;

	if (read(fd, &v, sizeof(v)) < 0)
		return;
	for (uint32_t i = 0; i < 128; i++)
		cs[n++] = v4(0xC6130000u + 256 + i, 32); /* 198.19.1.i */
	for (uint32_t i = 0; i < 16; i++)
		cs[n++] = det_addr(i);
	cs[n++] = v4(0xC6136400u, 24); /* 198.19.100.0/24 */
	cs[n++] = v4(0xC6140000u, 16); /* 198.20.0.0/16 */
	for (size_t i = 0; i < n; i++)
		items[i] = (struct zt_bl_feed_item){ .cidr = cs[i], .feed_id = 1 };
	__atomic_store_n(&D.churning, 1, __ATOMIC_SEQ_CST);
	while (!D.churn_err[0] && (zt_now_mono_ns() - t0 < DET_CHURN_NS || D.rounds < 2 ||
				   __atomic_load_n(&D.passes, __ATOMIC_SEQ_CST) < 2)) {
		struct zt_bl_feed_counts c = {};
		struct zt_bl_drift_cursor cur = {};
		struct zt_cidr *fe;
		size_t nf;
		char err[256] = "";

		if (zt_blocklist_feed_add(e->bl, items, n, &c, err, sizeof(err)) < 0)
			snprintf(D.churn_err, sizeof(D.churn_err), "feed add: %s", err);
		if (zt_allowlist_add(e->bl, &allow, "churn") < 0 ||
		    zt_allowlist_del(e->bl, &allow) < 0)
			snprintf(D.churn_err, sizeof(D.churn_err), "allowlist add/del failed");
		zt_blocklist_expire(e->bl, zt_now_boot_ns());
		if (zt_blocklist_feed_entries(e->bl, &fe, &nf) == 0)
			free(fe);
		zt_blocklist_drift_check(e->bl, &cur, 1 << 20, &h);
		if (zt_blocklist_feed_del(e->bl, cs, n, &c) < 0)
			snprintf(D.churn_err, sizeof(D.churn_err), "feed del failed");
		D.rounds++;
		if (zt_now_mono_ns() - t0 > DET_CHURN_MAX_NS)
			snprintf(D.churn_err, sizeof(D.churn_err),
				 "%zu rounds against %zu detector passes in %llu s", D.rounds,
				 __atomic_load_n(&D.passes, __ATOMIC_SEQ_CST),
				 DET_CHURN_MAX_NS / 1000000000ULL);
	}
	__atomic_store_n(&D.churned, 1, __ATOMIC_SEQ_CST);
}

static void *det_loop(void *arg)
{
	assert_int_equal(zt_loop_init(&D.loop), 0);
	/* Created on the loop's thread, as the daemon's engine does. */
	assert_int_equal(zt_actions_new(det_write, NULL, D.e, &D.act), 0);
	D.hold_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	D.churn_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	assert_true(D.hold_fd >= 0 && D.churn_fd >= 0);
	assert_int_equal(zt_loop_add(D.loop, D.hold_fd, EPOLLIN, det_hold, NULL), 0);
	assert_int_equal(zt_loop_add(D.loop, D.churn_fd, EPOLLIN, det_churn, NULL), 0);
	__atomic_store_n(&D.ready, 1, __ATOMIC_SEQ_CST);
	while (!__atomic_load_n(&D.stop, __ATOMIC_SEQ_CST))
		zt_loop_run_once(D.loop, 20);
	return NULL;
}

static void det_start(struct env *e)
{
	memset(&D, 0, sizeof(D));
	D.e = e;
	assert_int_equal(pthread_create(&D.thr, NULL, det_loop, NULL), 0);
	D.running = true;
	while (!__atomic_load_n(&D.ready, __ATOMIC_SEQ_CST))
		usleep(1000);
}

static void det_stop(void)
{
	if (!D.running)
		return;
	D.running = false;
	__atomic_store_n(&D.stop, 1, __ATOMIC_SEQ_CST);
	pthread_join(D.thr, NULL);
	zt_actions_free(D.act);
	zt_loop_stop(D.loop);
	close(D.hold_fd);
	close(D.churn_fd);
}

/* Also after a failed check: the loop thread goes before the blocklist it writes. */
static int det_teardown(void **state)
{
	det_stop();
	return teardown(state);
}

static void det_fire(int fd)
{
	uint64_t one = 1;

	assert_int_equal(write(fd, &one, sizeof(one)), sizeof(one));
}

/* A block as the engine hands it over: this thread decided it now. */
static int det_block(const struct zt_cidr *c, uint64_t ttl_ns)
{
	struct zt_block_action b = { .family = 4, .reason = ZT_BR_FLOOD };

	memcpy(b.addr, c->addr, 4);
	b.ttl_ns = ttl_ns;
	b.decided_ns = zt_now_mono_ns();
	snprintf(b.note, sizeof(b.note), "flood/syn score 1.00 incident test");
	return zt_actions_block(D.act, &b);
}

/*
 * The loop thread busy in a callback for 400 ms: a block decided on this
 * thread (the ring buffer's consumer, in the daemon) is in the kernel's
 * blocklist, published and dropping, when zt_actions_block returns, while
 * the callback still runs (it used to wait for the callback to end).
 */
static void test_detector_block_while_loop_busy(void **state)
{
	struct env *e = *state;
	struct zt_cidr c = C("198.18.7.7/32");
	struct zt_block_entry v;
	uint8_t key[8];
	uint64_t t0, dt;

	det_start(e);
	assert_int_equal(verdict(e, "198.18.7.7"), XDP_PASS);
	det_fire(D.hold_fd);
	while (!__atomic_load_n(&D.in_hold, __ATOMIC_SEQ_CST))
		usleep(100);
	usleep(20 * 1000);
	t0 = zt_now_mono_ns();
	assert_int_equal(det_block(&c, 600ULL * 1000000000ULL), 0);
	dt = zt_now_mono_ns() - t0;
	/* Before the callback ends: in the map, its length published, dropped by XDP. */
	assert_true(in_map(e->dp->xdp->maps.blocklist_v4, "198.18.7.7/32"));
	assert_int_equal(verdict(e, "198.18.7.7"), XDP_DROP);
	assert_true(__atomic_load_n(&D.in_hold, __ATOMIC_SEQ_CST));
	if (dt > 100 * 1000000ULL)
		fail_msg("the block took %.1f ms with the loop busy", (double)dt / 1e6);
	assert_int_equal(zt_blocklist_source(e->bl, &c), ZT_BS_DETECTOR);
	memcpy(key, &(uint32_t){ 32 }, 4);
	memcpy(key + 4, c.addr, 4);
	assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(e->dp->xdp->maps.blocklist_v4), key, &v),
			 0);
	assert_int_equal(v.reason, ZT_BR_FLOOD);
	assert_true(v.expires_ns > zt_now_boot_ns());
	assert_int_equal(zt_blocklist_count(e->bl, 0, false), 1);
	det_stop();
}

/*
 * Detector blocks written from this thread (half of them expiring at once)
 * while the loop thread changes the blocklist itself (det_churn): every
 * write succeeds, no drift walk in between finds maps and mirror apart,
 * and afterwards the kernel holds exactly the mirror: the lasting blocks
 * (dropping), none of the expired ones nor of the feed's.
 */
static void test_detector_blocks_race_loop_writers(void **state)
{
	struct env *e = *state;
	struct zt_drift_hooks h = { .may = det_may, .report = det_report, .ctx = &D };
	struct zt_bl_drift_cursor cur = {};
	struct zt_cidr *fe = NULL;
	uint8_t key[8], next[8];
	size_t passes = 0, writes = 0, nf = 99, keys = 0, slow = 0;
	uint64_t longest = 0;
	struct zt_prefix_set ps;
	int fd = bpf_map__fd(e->dp->xdp->maps.blocklist_v4);

	det_start(e);
	det_fire(D.churn_fd);
	while (!__atomic_load_n(&D.churning, __ATOMIC_SEQ_CST))
		usleep(100);
	do {
		for (size_t i = 0; i < DET_N; i++, writes++) {
			struct zt_cidr c = det_addr(i);
			uint64_t t0 = zt_now_mono_ns(), dt;
			int r = det_block(&c, i % 2 ? 1 : 600ULL * 1000000000ULL);

			dt = zt_now_mono_ns() - t0;
			longest = dt > longest ? dt : longest;
			slow += dt > 10 * 1000000ULL;
			if (r)
				fail_msg("block %zu of pass %zu: %s", i, passes, strerror(-r));
		}
		passes++;
		__atomic_store_n(&D.passes, passes, __ATOMIC_SEQ_CST);
	} while (!__atomic_load_n(&D.churned, __ATOMIC_SEQ_CST));
	det_stop();
	/* How long a write waited for the loop's blocklist calls: a figure, not a check. */
	print_message("      %zu detector writes in %zu passes against %zu loop rounds; longest "
		      "%.1f ms, %zu over 10 ms\n",
		      writes, passes, D.rounds, (double)longest / 1e6, slow);
	if (D.churn_err[0])
		fail_msg("the loop's writes: %s", D.churn_err);
	assert_true(passes >= 2 && D.rounds >= 2);
	if (D.reports)
		fail_msg("%d drift reports during the race, the last: %s", D.reports, D.last_what);
	/* What is left: the lasting detector blocks, exactly, in maps and mirror alike. */
	zt_blocklist_expire(e->bl, zt_now_boot_ns());
	for (size_t i = 0; i < DET_N; i++) {
		struct zt_cidr c = det_addr(i);
		char a[ZT_CIDR_STRLEN];

		zt_cidr_format(&c, a, sizeof(a));
		*strchr(a, '/') = '\0';
		if (i % 2 == 0) {
			assert_int_equal(zt_blocklist_source(e->bl, &c), ZT_BS_DETECTOR);
			assert_int_equal(verdict(e, a), XDP_DROP);
		} else {
			assert_int_equal(zt_blocklist_source(e->bl, &c), -ENOENT);
			assert_int_equal(verdict(e, a), XDP_PASS);
		}
	}
	assert_int_equal(verdict(e, "198.19.1.5"), XDP_PASS);
	assert_int_equal(verdict(e, "198.19.100.5"), XDP_PASS);
	assert_int_equal(verdict(e, "198.20.3.4"), XDP_PASS);
	assert_int_equal(zt_blocklist_feed_entries(e->bl, &fe, &nf), 0);
	free(fe);
	assert_int_equal(nf, 0);
	for (bool first = true; bpf_map_get_next_key(fd, first ? NULL : key, next) == 0;
	     first = false) {
		memcpy(key, next, sizeof(key));
		keys++;
	}
	assert_int_equal(keys, DET_N / 2);
	assert_int_equal(zt_blocklist_count(e->bl, 0, false), DET_N / 2);
	assert_int_equal(zt_blocklist_count(e->bl, 0, true), 0);
	ps = prefixes(e);
	assert_int_equal(ps.v4_count, 1);
	assert_int_equal(ps.v4_lens[0], 32);
	assert_int_equal(ps.allow_v4_used, 0);
	zt_blocklist_drift_check(e->bl, &cur, 1 << 20, &h);
	zt_blocklist_notes_check(e->bl, &h);
	if (D.reports)
		fail_msg("%d drift reports after the race, the last: %s", D.reports, D.last_what);
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
		cmocka_unit_test_setup_teardown(test_expiry_in_slices, setup_big, teardown),
		cmocka_unit_test_setup_teardown(test_expiry_changes_mid_sweep, setup_big, teardown),
		cmocka_unit_test_setup_teardown(test_api_import_audited_in_bulk, setup_api,
						teardown),
		cmocka_unit_test_setup_teardown(test_api_block_list_pages, setup_api, teardown),
		cmocka_unit_test_setup_teardown(test_api_allow_list_pages, setup_api, teardown),
		cmocka_unit_test_setup_teardown(test_detector_block_while_loop_busy, setup,
						det_teardown),
		cmocka_unit_test_setup_teardown(test_detector_blocks_race_loop_writers, setup_big,
						det_teardown),
	};
	zt_test_private_mounts();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
