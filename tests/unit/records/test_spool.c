// SPDX-License-Identifier: GPL-2.0-only
/* Unit tests: the disk spool (order, bound, corruption, crash leftovers, restart). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <zlib.h>

#include "alloc_peak.h"
#include "records/spool.h"

static char dir[64];

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/zt-spool-test.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd);
}

static void mkrec(struct zt_flow_record *r, int i)
{
	zt_flowrec_init(r);
	r->family = i % 2 ? AF_INET6 : AF_INET;
	r->source_ip[0] = (uint8_t)i;
	r->dest_ip[3] = 9;
	r->bytes_sent = i;
	r->bytes_received = -i; /* negative integers survive */
	r->start_time_us = 1790000000000000LL + i;
	r->present = ZT_FR_HAS_SPORT | ZT_FR_HAS_ANOMALY;
	r->source_port = (uint16_t)i;
	r->anomaly_score = 0.25f;
	r->tcp_flags = ZT_TCP_SYN;
	snprintf(r->protocol, sizeof(r->protocol), "tcp");
	snprintf(r->node, sizeof(r->node), "node-%d", i);
	snprintf(r->policy, sizeof(r->policy), "p\n'\"\\\xff%d", i);
	memset(r->source_workload, 'w', sizeof(r->source_workload) - 1);
}

static int count_files(const char *prefix)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		if (!strncmp(e->d_name, prefix, strlen(prefix)))
			n++;
	closedir(d);
	return n;
}

static void test_roundtrip_order(void **state)
{
	struct zt_spool *s;
	struct zt_spool_seg seg;
	struct zt_flow_record in[30];
	struct zt_spool_stats st;
	char err[256];

	for (int i = 0; i < 30; i++)
		mkrec(&in[i], i);
	assert_int_equal(zt_spool_open(dir, 1 << 20, &s, err, sizeof(err)), 0);
	assert_int_equal(zt_spool_next(s, &seg, err, sizeof(err)), -ENOENT);
	assert_int_equal(zt_spool_write(s, in, 10, err, sizeof(err)), 0);
	assert_int_equal(zt_spool_write(s, in + 10, 15, err, sizeof(err)), 0);
	assert_int_equal(zt_spool_write(s, in + 25, 5, err, sizeof(err)), 0);
	zt_spool_get_stats(s, &st);
	assert_int_equal(st.segments, 3);
	assert_int_equal(st.records_written, 30);
	/* Oldest first; a segment not acknowledged comes back. */
	assert_int_equal(zt_spool_next(s, &seg, err, sizeof(err)), 0);
	assert_int_equal(seg.n, 10);
	assert_memory_equal(seg.recs, in, 10 * sizeof(in[0]));
	zt_spool_seg_free(&seg);
	assert_int_equal(zt_spool_next(s, &seg, err, sizeof(err)), 0);
	assert_int_equal(seg.n, 10);
	assert_int_equal(zt_spool_done(s, &seg, err, sizeof(err)), 0);
	assert_int_equal(zt_spool_next(s, &seg, err, sizeof(err)), 0);
	assert_int_equal(seg.n, 15);
	assert_memory_equal(seg.recs, in + 10, 15 * sizeof(in[0]));
	assert_int_equal(zt_spool_done(s, &seg, err, sizeof(err)), 0);
	zt_spool_close(s);

	/* Restart: what was not acknowledged is still there, in order. */
	assert_int_equal(zt_spool_open(dir, 1 << 20, &s, err, sizeof(err)), 0);
	zt_spool_get_stats(s, &st);
	assert_int_equal(st.segments, 1);
	assert_true(st.bytes > 0);
	assert_int_equal(zt_spool_write(s, in, 1, err, sizeof(err)), 0);
	assert_int_equal(zt_spool_next(s, &seg, err, sizeof(err)), 0);
	assert_int_equal(seg.n, 5);
	assert_memory_equal(seg.recs, in + 25, 5 * sizeof(in[0]));
	assert_int_equal(zt_spool_done(s, &seg, err, sizeof(err)), 0);
	assert_int_equal(zt_spool_next(s, &seg, err, sizeof(err)), 0);
	assert_int_equal(seg.n, 1);
	assert_int_equal(zt_spool_done(s, &seg, err, sizeof(err)), 0);
	assert_int_equal(zt_spool_next(s, &seg, err, sizeof(err)), -ENOENT);
	zt_spool_get_stats(s, &st);
	assert_int_equal(st.bytes, 0);
	assert_int_equal(st.segments, 0);
	zt_spool_close(s);
}

static void test_bound_drops_new(void **state)
{
	struct zt_spool *s;
	struct zt_spool_seg seg;
	struct zt_flow_record in[50];
	struct zt_spool_stats st;
	char err[256];
	int ok = 0, r;

	for (int i = 0; i < 50; i++)
		mkrec(&in[i], i);
	/* Room for a few small segments only. */
	assert_int_equal(zt_spool_open(dir, 2000, &s, err, sizeof(err)), 0);
	for (int i = 0; i < 50; i++) {
		r = zt_spool_write(s, &in[i], 1, err, sizeof(err));
		if (r == 0)
			ok++;
		else
			assert_int_equal(r, -ENOSPC);
	}
	zt_spool_get_stats(s, &st);
	assert_true(ok > 0 && ok < 50);
	assert_int_equal(st.dropped_records, 50 - ok);
	assert_true(st.bytes <= 2000);
	assert_non_null(strstr(err, "new records dropped"));
	/* What was kept is the oldest: the first ok records. */
	assert_int_equal(zt_spool_next(s, &seg, err, sizeof(err)), 0);
	assert_memory_equal(seg.recs, &in[0], sizeof(in[0]));
	assert_int_equal(zt_spool_done(s, &seg, err, sizeof(err)), 0);
	zt_spool_close(s);
}

static void write_file(const char *name, const void *p, size_t n)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, n), (ssize_t)n);
	close(fd);
}

/* A truncated and a bit-flipped segment are moved aside and reported; the good one is read. */
static void test_corrupt_and_truncated(void **state)
{
	struct zt_spool *s;
	struct zt_spool_seg seg;
	struct zt_flow_record in[3];
	struct zt_spool_stats st;
	uint8_t *buf;
	size_t len;
	char err[256];

	for (int i = 0; i < 3; i++)
		mkrec(&in[i], i);
	assert_int_equal(zt_spool_encode(in, 3, &buf, &len), 0);
	write_file("seg-00000000000000000001.zsp", buf, len - 7); /* truncated */
	buf[len - 3] ^= 0x40;
	write_file("seg-00000000000000000002.zsp", buf, len); /* bit flip */
	buf[len - 3] ^= 0x40;
	write_file("seg-00000000000000000003.zsp", buf, 10); /* shorter than a header */
	write_file("seg-00000000000000000004.zsp", buf, len); /* good */
	/* A segment whose write never finished (SIGKILL before the rename). */
	write_file(".tmp-seg-00000000000000000005.zsp", buf, len / 2);
	free(buf);

	assert_int_equal(zt_spool_open(dir, 1 << 20, &s, err, sizeof(err)), 0);
	zt_spool_get_stats(s, &st);
	assert_int_equal(st.partial_removed, 1);
	assert_int_equal(count_files(".tmp-"), 0);
	assert_int_equal(zt_spool_next(s, &seg, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "seg-00000000000000000001.zsp"));
	assert_non_null(strstr(err, "truncated"));
	assert_non_null(strstr(err, "moved aside"));
	assert_int_equal(zt_spool_next(s, &seg, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "CRC"));
	assert_int_equal(zt_spool_next(s, &seg, err, sizeof(err)), -EBADMSG);
	assert_int_equal(zt_spool_next(s, &seg, err, sizeof(err)), 0);
	assert_int_equal(seg.seq, 4);
	assert_int_equal(seg.n, 3);
	assert_memory_equal(seg.recs, in, sizeof(in));
	assert_int_equal(zt_spool_done(s, &seg, err, sizeof(err)), 0);
	zt_spool_get_stats(s, &st);
	assert_int_equal(st.corrupt_segments, 3);
	assert_int_equal(count_files("bad-seg-"), 3);
	/* New segments get numbers after every existing one. */
	assert_int_equal(zt_spool_write(s, in, 1, err, sizeof(err)), 0);
	assert_int_equal(zt_spool_next(s, &seg, err, sizeof(err)), 0);
	assert_true(seg.seq > 4);
	zt_spool_seg_free(&seg);
	zt_spool_close(s);
}

/* Decoding hostile payloads: a valid envelope around bad CBOR is refused. */
static void test_decode_rejects(void **state)
{
	struct zt_flow_record in, *out = NULL;
	uint8_t *buf;
	size_t len, n = 0;
	char why[128];

	mkrec(&in, 1);
	assert_int_equal(zt_spool_encode(&in, 1, &buf, &len), 0);
	assert_int_equal(zt_spool_decode(buf, len, &out, &n, why, sizeof(why)), 0);
	assert_int_equal(n, 1);
	assert_memory_equal(out, &in, sizeof(in));
	free(out);
	memcpy(buf, "XTSPOOL1", 8);
	assert_int_equal(zt_spool_decode(buf, len, &out, &n, why, sizeof(why)), -EBADMSG);
	assert_non_null(strstr(why, "magic"));
	free(buf);
	assert_int_equal(zt_spool_encode(&in, 0, &buf, &len), -EINVAL);
}

/* A record with producer bugs (no family, a field without its NUL) still round-trips. */
static void test_producer_bugs(void **state)
{
	struct zt_flow_record in, *out = NULL;
	uint8_t *buf;
	size_t len, n = 0;
	char why[128];

	mkrec(&in, 2);
	in.family = 0;
	in.kind = 9;
	memset(in.protocol, 'x', sizeof(in.protocol)); /* no NUL */
	assert_int_equal(zt_spool_encode(&in, 1, &buf, &len), 0);
	assert_int_equal(zt_spool_decode(buf, len, &out, &n, why, sizeof(why)), 0);
	assert_int_equal(out->family, AF_INET);
	assert_int_equal(out->kind, ZT_FLOW_KIND_FLOW);
	assert_int_equal(strlen(out->protocol), sizeof(in.protocol) - 1);
	free(out);
	free(buf);
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* A segment with a consistent envelope (magic, sizes, CRCs) around payload. */
static size_t envelope(uint8_t *seg, uint32_t cnt, uint32_t ulen, const uint8_t *payload,
		       uint32_t clen)
{
	memcpy(seg, "ZTSPOOL1", 8);
	put_be32(seg + 8, cnt);
	put_be32(seg + 12, ulen);
	put_be32(seg + 16, clen);
	memcpy(seg + 28, payload, clen);
	put_be32(seg + 20, (uint32_t)crc32(0, seg + 28, clen));
	put_be32(seg + 24, (uint32_t)crc32(0, seg, 24));
	return 28 + clen;
}

/*
 * A header is input too: a 37-byte segment claiming 1,000,000 records and
 * 4,096,000,000 inflated bytes asked for ~5 GB before inflating anything.
 * Where that allocation failed the error was not -EBADMSG, so the segment
 * stayed in place and every later segment waited behind it. Now nothing is
 * sized by the header alone, the segment is -EBADMSG, moved aside, and the
 * next one is replayed.
 */
static void test_header_bounds(void **state)
{
	struct zt_flow_record in[2], *out = NULL;
	struct zt_spool_seg seg;
	struct zt_spool *s;
	uint8_t z[64], big[64], *good;
	uLongf zlen = sizeof(z);
	size_t len, n = 0, glen;
	char why[256], err[512];

	assert_int_equal(compress2(z, &zlen, (const uint8_t *)"\x80", 1, 9), Z_OK);
	len = envelope(big, 1000000, 4096000000u, z, (uint32_t)zlen);
	assert_int_equal(len, 37);
	alloc_peak_start();
	assert_int_equal(zt_spool_decode(big, len, &out, &n, why, sizeof(why)), -EBADMSG);
	if (alloc_peak > (1u << 20)) {
		print_error("a 37-byte segment made an allocation of %zu bytes\n",
			    (size_t)alloc_peak);
		fail();
	}
	assert_non_null(strstr(why, "implausible header"));

	/* A header that understates the size: refused, not overrun. */
	mkrec(&in[0], 1);
	mkrec(&in[1], 2);
	assert_int_equal(zt_spool_encode(in, 2, &good, &glen), 0);
	{
		uint8_t *copy = malloc(glen);

		memcpy(copy, good, glen);
		len = envelope(copy, 2, 200, good + 28, (uint32_t)(glen - 28));
		assert_int_equal(zt_spool_decode(copy, len, &out, &n, why, sizeof(why)), -EBADMSG);
		free(copy);
	}

	/* In the spool: moved aside, named, and the next segment is replayed. */
	write_file("seg-00000000000000000001.zsp", big, 37);
	write_file("seg-00000000000000000002.zsp", good, glen);
	free(good);
	assert_int_equal(zt_spool_open(dir, 1 << 20, &s, err, sizeof(err)), 0);
	alloc_peak_start();
	assert_int_equal(zt_spool_next(s, &seg, err, sizeof(err)), -EBADMSG);
	assert_true(alloc_peak < (1u << 20));
	assert_non_null(strstr(err, "seg-00000000000000000001.zsp"));
	assert_non_null(strstr(err, "moved aside"));
	assert_int_equal(count_files("bad-seg-"), 1);
	assert_int_equal(zt_spool_next(s, &seg, err, sizeof(err)), 0);
	assert_int_equal(seg.seq, 2);
	assert_int_equal(seg.n, 2);
	assert_memory_equal(seg.recs, in, sizeof(in));
	assert_int_equal(zt_spool_done(s, &seg, err, sizeof(err)), 0);
	zt_spool_close(s);
}

static void test_reject_file(void **state)
{
	struct zt_spool *s;
	struct zt_spool_seg seg;
	struct zt_flow_record in;
	struct zt_spool_stats st;
	char err[256];

	mkrec(&in, 1);
	assert_int_equal(zt_spool_open(dir, 1 << 20, &s, err, sizeof(err)), 0);
	assert_int_equal(zt_spool_reject(s, &in, 1, err, sizeof(err)), 0);
	assert_int_equal(count_files("rejected-"), 1);
	/* Rejected records are kept but not replayed. */
	assert_int_equal(zt_spool_next(s, &seg, err, sizeof(err)), -ENOENT);
	zt_spool_get_stats(s, &st);
	assert_int_equal(st.rejected_records, 1);
	assert_true(st.bytes > 0);
	zt_spool_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_roundtrip_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bound_drops_new, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_and_truncated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_decode_rejects, setup, teardown),
		cmocka_unit_test_setup_teardown(test_producer_bugs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reject_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_header_bounds, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
