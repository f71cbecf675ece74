// SPDX-License-Identifier: GPL-2.0-only
/*
 * Blocklist drift repair against real kernel maps: an entry deleted or
 * overwritten behind the agent's back is put back with the very value the
 * agent wrote (kind, note, source, feed, added time, expiry), by each of
 * the three ways drift is found: the slow walk (zt_blocklist_drift_check),
 * the whole-map read and bucket checksums (zt_blocklist_scan_*), and the
 * single key the drift watch reports (zt_blocklist_drift_check_key). An
 * entry added outside the agent is deleted; an untouched one is left alone.
 * The mirror's checksums, kept as entries change, match a whole read.
 * block_notes (the entries' reason texts) is held to what the agent wrote:
 * a note changed or deleted is written back, one added outside deleted.
 */
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
#include <unistd.h>
#include <cmocka.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent/config.h"
#include "agent/log.h"
#include "guard/blocklist.h"
#include "guard/datapath.h"
#include "guard/drift.h"
#include "xdp_guard.skel.h"
#include "private_mounts.h"

struct env {
	char dir[64];
	struct zt_config cfg;
	struct zt_datapath *dp;
	struct zt_blocklist *bl;
	int fd4; /* blocklist_v4 */
	/* what the hooks saw */
	int reports, repaired;
	char last_what[1024];
};

static bool may(void *ctx, const char *kind)
{
	(void)ctx;
	(void)kind;
	return true;
}

static void report(void *ctx, const char *kind, const char *subject, const char *what,
		   bool repaired, int err)
{
	struct env *e = ctx;

	(void)subject;
	(void)err;
	assert_string_equal(kind, "blocklist");
	e->reports++;
	e->repaired += repaired;
	snprintf(e->last_what, sizeof(e->last_what), "%s", what);
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	char err[512];

	strcpy(e->dir, "/tmp/zt-bldrift-XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	assert_int_equal(mount("bpf", e->dir, "bpf", 0, "mode=0700"), 0);
	zt_config_defaults(&e->cfg);
	snprintf(e->cfg.bpffs, sizeof(e->cfg.bpffs), "%s/ztagent", e->dir);
	e->cfg.xdp.blocklist_max = 256;
	e->cfg.xdp.allowlist_max = 16;
	e->cfg.xdp.ringbuf_bytes = 4096;
	zt_log_set_level(ZT_LOG_ERROR);
	assert_int_equal(zt_datapath_init(&e->dp, &e->cfg, err, sizeof(err)), 0);
	assert_int_equal(zt_blocklist_init(&e->bl, e->dp, err, sizeof(err)), 0);
	e->fd4 = bpf_map__fd(e->dp->xdp->maps.blocklist_v4);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	char err[256];

	zt_blocklist_stop(e->bl);
	zt_datapath_stop(e->dp);
	zt_datapath_detach(&e->cfg, err, sizeof(err));
	umount(e->dir);
	rmdir(e->dir);
	free(e);
	return 0;
}

static void key4(const char *a, uint8_t key[8])
{
	struct zt_cidr c;

	assert_int_equal(zt_cidr_parse(a, &c, NULL), 0);
	memcpy(key, &(uint32_t){ c.prefixlen }, 4);
	memcpy(key + 4, c.addr, 4);
}

/* Adds a as a scan block with a note and a TTL; returns its kernel value. */
static struct zt_block_entry add(struct env *e, const char *a, const char *note)
{
	struct zt_block_req req = { .ttl_ns = 3600ULL * 1000000000ULL,
				    .reason = ZT_BR_SCAN,
				    .source = ZT_BS_DETECTOR,
				    .note = note };
	struct zt_block_entry v;
	struct zt_cidr c;
	uint8_t key[8];
	char err[256];

	assert_int_equal(zt_cidr_parse(a, &c, NULL), 0);
	assert_int_equal(zt_blocklist_add(e->bl, &c, &req, NULL, err, sizeof(err)), 0);
	key4(a, key);
	assert_int_equal(bpf_map_lookup_elem(e->fd4, key, &v), 0);
	/* Made in the past: a value put back with the time of the repair would differ. */
	v.created_unix -= 1000;
	assert_int_equal(bpf_map_update_elem(e->fd4, key, &v, BPF_EXIST), 0);
	return v;
}

static void assert_value(struct env *e, const char *a, const struct zt_block_entry *want)
{
	struct zt_block_entry v;
	uint8_t key[8];

	key4(a, key);
	assert_int_equal(bpf_map_lookup_elem(e->fd4, key, &v), 0);
	assert_int_equal(v.reason, want->reason);
	assert_int_equal(v.source, want->source);
	assert_int_equal(v.note_id, want->note_id);
	assert_int_equal(v.feed_id, want->feed_id);
	assert_int_equal(v.created_unix, want->created_unix);
	assert_int_equal(v.expires_ns, want->expires_ns);
	assert_memory_equal(&v, want, sizeof(v));
}

/* A restart of the agent reads the maps into a new mirror: the test's own created_unix counts. */
static void reload(struct env *e)
{
	char err[256];

	zt_blocklist_stop(e->bl);
	assert_int_equal(zt_blocklist_init(&e->bl, e->dp, err, sizeof(err)), 0);
}

/* One whole pass of the slow walk. */
static void walk(struct env *e)
{
	struct zt_drift_hooks h = { .may = may, .report = report, .ctx = e };
	struct zt_bl_drift_cursor cur = {};

	cur.no_batch = false;
	zt_blocklist_drift_check(e->bl, &cur, 16384, &h);
}

/* A whole read and its comparison. */
static int scan(struct env *e)
{
	struct zt_drift_hooks h = { .may = may, .report = report, .ctx = e };
	struct zt_bl_scan *s;
	int r;

	assert_int_equal(zt_blocklist_scan_new(e->bl, 0, &s), 0);
	assert_int_equal(zt_blocklist_scan_run(s), 0);
	r = zt_blocklist_scan_compare(e->bl, s, 8192, &h);
	zt_blocklist_scan_free(s);
	return r;
}

/* The published prefix set's generation (tc_endpoint re-checks its flows when it moves). */
static uint32_t pub_gen(struct env *e)
{
	struct zt_prefix_set ps;
	uint32_t zero = 0;

	assert_int_equal(
		bpf_map_lookup_elem(bpf_map__fd(e->dp->xdp->maps.blocklist_prefixes), &zero, &ps),
		0);
	return ps.gen;
}

static void test_walk_puts_back_whole_value(void **state)
{
	struct env *e = *state;
	struct zt_block_entry v0, other;
	uint8_t key[8];
	uint32_t gen;

	v0 = add(e, "198.18.5.1", "ssh brute force, ticket 4711");
	other = add(e, "198.18.5.2", NULL);
	reload(e);
	key4("198.18.5.1", key);
	assert_int_equal(bpf_map_delete_elem(e->fd4, key), 0);
	gen = pub_gen(e);
	walk(e);
	assert_int_equal(e->repaired, 1);
	assert_value(e, "198.18.5.1", &v0);
	/* The entry blocks again: one new generation for the pass. */
	assert_int_equal(pub_gen(e), gen + 1);
	assert_non_null(strstr(e->last_what, "reason=\"ssh brute force, ticket 4711\""));
	assert_non_null(strstr(e->last_what, "kind=scan source=detector"));
	assert_value(e, "198.18.5.2", &other);

	/* Kind and note overwritten, expiry and source kept: seen and written back. */
	{
		struct zt_block_entry bad = v0;

		bad.reason = ZT_BR_OPERATOR;
		bad.note_id = 0;
		assert_int_equal(bpf_map_update_elem(e->fd4, key, &bad, BPF_EXIST), 0);
	}
	walk(e);
	assert_int_equal(e->repaired, 2);
	assert_value(e, "198.18.5.1", &v0);
	assert_non_null(strstr(e->last_what, "entry changed: kind=operator"));
	gen = pub_gen(e);
	walk(e);
	assert_int_equal(e->reports, 2); /* nothing more to repair */
	assert_int_equal(pub_gen(e), gen); /* and no new generation */
}

static void test_scan_sees_note_change(void **state)
{
	struct env *e = *state;
	struct zt_block_entry v0, bad;
	uint8_t key[8];

	v0 = add(e, "198.18.5.3", "noted");
	reload(e);
	assert_int_equal(scan(e), 0);
	bad = v0;
	bad.note_id ^= 2; /* another note, same kind, source and expiry */
	key4("198.18.5.3", key);
	assert_int_equal(bpf_map_update_elem(e->fd4, key, &bad, BPF_EXIST), 0);
	assert_true(scan(e) > 0);
	assert_int_equal(e->repaired, 1);
	assert_value(e, "198.18.5.3", &v0);
	assert_int_equal(scan(e), 0);
	/* Deleted: put back whole by the read too. */
	assert_int_equal(bpf_map_delete_elem(e->fd4, key), 0);
	assert_true(scan(e) > 0);
	assert_int_equal(e->repaired, 2);
	assert_value(e, "198.18.5.3", &v0);
}

static void test_check_key(void **state)
{
	struct env *e = *state;
	struct zt_drift_hooks h = { .may = may, .report = report, .ctx = e };
	struct zt_block_entry v0, bad;
	uint8_t key[8], extra[8];

	v0 = add(e, "198.18.5.4", "watched");
	reload(e);
	key4("198.18.5.4", key);
	/* Untouched: nothing to say. */
	zt_blocklist_drift_check_key(e->bl, 0, false, key, &h);
	assert_int_equal(e->reports, 0);
	/* Deleted. */
	assert_int_equal(bpf_map_delete_elem(e->fd4, key), 0);
	zt_blocklist_drift_check_key(e->bl, 0, false, key, &h);
	assert_int_equal(e->repaired, 1);
	assert_value(e, "198.18.5.4", &v0);
	/* Changed. */
	bad = v0;
	bad.expires_ns = 1;
	bad.reason = ZT_BR_FLOOD;
	assert_int_equal(bpf_map_update_elem(e->fd4, key, &bad, BPF_EXIST), 0);
	zt_blocklist_drift_check_key(e->bl, 0, false, key, &h);
	assert_int_equal(e->repaired, 2);
	assert_value(e, "198.18.5.4", &v0);
	/* Added. */
	key4("198.18.5.99", extra);
	assert_int_equal(bpf_map_update_elem(e->fd4, extra, &v0, BPF_NOEXIST), 0);
	zt_blocklist_drift_check_key(e->bl, 0, false, extra, &h);
	assert_int_equal(e->repaired, 3);
	assert_int_equal(bpf_map_lookup_elem(e->fd4, extra, &bad), -ENOENT);
	/* A key nobody has, in neither: nothing. */
	zt_blocklist_drift_check_key(e->bl, 0, false, extra, &h);
	assert_int_equal(e->reports, 3);
}

/* The mirror's checksums follow every change the agent makes: a whole read finds nothing. */
static void test_sums_follow_changes(void **state)
{
	struct env *e = *state;
	struct zt_block_req plain = { .reason = ZT_BR_OPERATOR, .note = "bulk" };
	struct zt_block_req ttl = { .ttl_ns = 1, .reason = ZT_BR_FLOOD, .source = ZT_BS_DETECTOR };
	struct zt_block_req other = { .reason = ZT_BR_POLICY, .note = "replaced" };
	struct zt_cidr cs[200], ct[20];
	size_t added, replaced;
	char a[32], err[256];

	for (int i = 0; i < 200; i++) {
		snprintf(a, sizeof(a), "198.18.6.%d", i);
		assert_int_equal(zt_cidr_parse(a, &cs[i], NULL), 0);
	}
	for (int i = 0; i < 20; i++) {
		snprintf(a, sizeof(a), "198.18.7.%d", i);
		assert_int_equal(zt_cidr_parse(a, &ct[i], NULL), 0);
	}
	assert_int_equal(
		zt_blocklist_import(e->bl, cs, 200, &plain, &added, &replaced, err, sizeof(err)),
		0);
	assert_int_equal(
		zt_blocklist_import(e->bl, ct, 20, &ttl, &added, &replaced, err, sizeof(err)), 0);
	assert_int_equal(scan(e), 0);
	/* Replaced with another value, deleted, expired. */
	assert_int_equal(
		zt_blocklist_import(e->bl, cs, 10, &other, &added, &replaced, err, sizeof(err)), 0);
	assert_int_equal(replaced, 10);
	for (int i = 50; i < 80; i++)
		assert_int_equal(zt_blocklist_del(e->bl, &cs[i]), 0);
	do
		zt_blocklist_expire(e->bl, UINT64_MAX / 2);
	while (zt_blocklist_expire_pending(e->bl));
	assert_int_equal(zt_blocklist_count(e->bl, 0, false), 170);
	assert_int_equal(scan(e), 0);
	assert_int_equal(e->reports, 0);
	/* And a restart's mirror sums the same. */
	reload(e);
	assert_int_equal(scan(e), 0);
	assert_int_equal(e->reports, 0);
}

static void note_text(struct env *e, uint32_t id, char *buf)
{
	struct zt_note n;

	buf[0] = '\0';
	if (bpf_map_lookup_elem(bpf_map__fd(e->dp->xdp->maps.block_notes), &id, &n) == 0)
		snprintf(buf, ZT_NOTE_LEN, "%s", n.text);
}

static void test_notes(void **state)
{
	struct env *e = *state;
	struct zt_drift_hooks h = { .may = may, .report = report, .ctx = e };
	int fdn = bpf_map__fd(e->dp->xdp->maps.block_notes);
	struct zt_block_entry v0, v1;
	struct zt_note bad = { .text = "someone else's reason" };
	uint32_t extra;
	char t[ZT_NOTE_LEN];

	v0 = add(e, "198.18.5.5", "ticket 99: scanner");
	/* The mirror is read from the pinned map at start, and kept as notes are interned. */
	reload(e);
	v1 = add(e, "198.18.5.6", "added after the restart");
	zt_blocklist_notes_check(e->bl, &h);
	assert_int_equal(e->reports, 0);
	/* Changed: the watch's key. */
	assert_int_equal(bpf_map_update_elem(fdn, &v0.note_id, &bad, BPF_EXIST), 0);
	zt_blocklist_notes_check_key(e->bl, (const uint8_t *)&v0.note_id, &h);
	assert_int_equal(e->repaired, 1);
	note_text(e, v0.note_id, t);
	assert_string_equal(t, "ticket 99: scanner");
	assert_non_null(strstr(e->last_what, "note changed: \"someone else's reason\""));
	/* Deleted: the tick's walk. */
	assert_int_equal(bpf_map_delete_elem(fdn, &v1.note_id), 0);
	zt_blocklist_notes_check(e->bl, &h);
	assert_int_equal(e->repaired, 2);
	note_text(e, v1.note_id, t);
	assert_string_equal(t, "added after the restart");
	/* Added outside the agent: deleted, by the walk. */
	extra = (v0.note_id ^ 0x10000) | 1;
	assert_int_equal(bpf_map_update_elem(fdn, &extra, &bad, BPF_NOEXIST), 0);
	zt_blocklist_notes_check(e->bl, &h);
	assert_int_equal(e->repaired, 3);
	assert_int_equal(bpf_map_lookup_elem(fdn, &extra, &bad), -ENOENT);
	zt_blocklist_notes_check(e->bl, &h);
	assert_int_equal(e->reports, 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_walk_puts_back_whole_value, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scan_sees_note_change, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sums_follow_changes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_notes, setup, teardown),
	};

	zt_test_private_mounts();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
