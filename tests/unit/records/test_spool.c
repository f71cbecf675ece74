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
	r->protocol = 6;
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
	memset(in.threat_type, 'x', sizeof(in.threat_type)); /* no NUL */
	assert_int_equal(zt_spool_encode(&in, 1, &buf, &len), 0);
	assert_int_equal(zt_spool_decode(buf, len, &out, &n, why, sizeof(why)), 0);
	assert_int_equal(out->family, AF_INET);
	assert_int_equal(out->kind, ZT_FLOW_KIND_FLOW);
	assert_int_equal(strlen(out->threat_type), sizeof(in.threat_type) - 1);
	free(out);
	free(buf);
}

/*
 * tests/data/spool-v1.zsp was written by zt_spool_encode as it was before
 * schema migration 003 (format 1, magic ZTSPOOL1, the protocol as text):
 * 8 records with ids 01900000-0000-7000-8000-0000000000NN (NN 1..8),
 * protocols tcp, udp, icmp, icmpv6, sctp, "47", "any", tcp; record 8 has
 * packet_count 3000000001 and duration_ms 3000000000. It must still read,
 * from a spool directory, with the protocols as numbers.
 */
static void test_format1_segment(void **state)
{
	static const uint8_t protos[8] = { 6, 17, 1, 58, 132, 47, 255, 6 };
	struct zt_spool *s;
	struct zt_spool_seg seg;
	char err[256], cmd[256];

	snprintf(cmd, sizeof(cmd), "cp tests/data/spool-v1.zsp '%s/seg-00000000000000000007.zsp'",
		 dir);
	if (system(cmd))
		fail_msg("cannot copy tests/data/spool-v1.zsp (run from the repository root)");
	assert_int_equal(zt_spool_open(dir, 1 << 20, &s, err, sizeof(err)), 0);
	assert_int_equal(zt_spool_next(s, &seg, err, sizeof(err)), 0);
	assert_int_equal(seg.seq, 7);
	assert_int_equal(seg.n, 8);
	for (int i = 0; i < 8; i++) {
		const struct zt_flow_record *r = &seg.recs[i];

		assert_int_equal(r->id[0], 0x01);
		assert_int_equal(r->id[15], i + 1);
		assert_int_equal(r->protocol, protos[i]);
		assert_string_equal(r->node, "fixture-node");
		assert_int_equal(r->bytes_sent, 1000 + i + 1);
	}
	assert_int_equal(seg.recs[0].source_port, 40001);
	assert_int_equal(seg.recs[0].dest_port, 8080);
	assert_int_equal(seg.recs[0].present & ZT_FR_HAS_DPORT, ZT_FR_HAS_DPORT);
	assert_int_equal(seg.recs[2].present & (ZT_FR_HAS_SPORT | ZT_FR_HAS_DPORT), 0);
	assert_int_equal(seg.recs[3].family, AF_INET6);
	assert_int_equal(seg.recs[6].kind, ZT_FLOW_KIND_XDP_DROP_AGG);
	assert_int_equal(seg.recs[6].aggregate_count, 321);
	assert_string_equal(seg.recs[5].threat_type, "bad\xff utf8");
	assert_int_equal(seg.recs[7].packet_count, 3000000001LL);
	assert_int_equal(zt_spool_done(s, &seg, err, sizeof(err)), 0);
	zt_spool_close(s);
}

/*
 * tests/data/spool-v2.zsp was written by zt_spool_encode before migration
 * 007 (format 2, magic ZTSPOOL2, 33 fields): 2 records, ids ...01 and ...02,
 * source ports 40000 and 40001, bytes_sent 2000 and 2001, node
 * "fixture-v2". They read with mtls false and no SPIFFE IDs.
 */
static void test_format2_segment(void **state)
{
	struct zt_spool *s;
	struct zt_spool_seg seg;
	char err[256], cmd[256];

	snprintf(cmd, sizeof(cmd), "cp tests/data/spool-v2.zsp '%s/seg-00000000000000000009.zsp'",
		 dir);
	if (system(cmd))
		fail_msg("cannot copy tests/data/spool-v2.zsp (run from the repository root)");
	assert_int_equal(zt_spool_open(dir, 1 << 20, &s, err, sizeof(err)), 0);
	assert_int_equal(zt_spool_next(s, &seg, err, sizeof(err)), 0);
	assert_int_equal(seg.n, 2);
	for (int i = 0; i < 2; i++) {
		const struct zt_flow_record *r = &seg.recs[i];

		assert_int_equal(r->id[15], i + 1);
		assert_int_equal(r->source_port, 40000 + i);
		assert_int_equal(r->bytes_sent, 2000 + i);
		assert_string_equal(r->node, "fixture-v2");
		assert_false(r->mtls);
		assert_string_equal(r->source_spiffe_id, "");
		assert_string_equal(r->dest_spiffe_id, "");
	}
	assert_int_equal(zt_spool_done(s, &seg, err, sizeof(err)), 0);
	zt_spool_close(s);
}

/* A format-1 rejected file (a rolling upgrade) is tried once more; a format-2 one stays. */
static void test_format1_rejected_retried(void **state)
{
	struct zt_spool *s;
	struct zt_spool_seg seg;
	struct zt_spool_stats st;
	struct zt_flow_record in;
	char err[256], cmd[256];

	mkrec(&in, 1);
	assert_int_equal(zt_spool_open(dir, 1 << 20, &s, err, sizeof(err)), 0);
	assert_int_equal(zt_spool_reject(s, &in, 1, err, sizeof(err)), 0);
	zt_spool_close(s);
	snprintf(cmd, sizeof(cmd),
		 "cp tests/data/spool-v1.zsp '%s/rejected-00000000000000000005.zsp'", dir);
	if (system(cmd))
		fail_msg("cannot copy tests/data/spool-v1.zsp (run from the repository root)");
	assert_int_equal(zt_spool_open(dir, 1 << 20, &s, err, sizeof(err)), 0);
	zt_spool_get_stats(s, &st);
	assert_int_equal(st.format1_retried, 1);
	assert_int_equal(st.segments, 1);
	assert_int_equal(count_files("rejected-"), 1); /* the format-2 one */
	assert_int_equal(zt_spool_next(s, &seg, err, sizeof(err)), 0);
	assert_int_equal(seg.seq, 5);
	assert_int_equal(seg.n, 8);
	assert_int_equal(zt_spool_done(s, &seg, err, sizeof(err)), 0);
	assert_int_equal(zt_spool_next(s, &seg, err, sizeof(err)), -ENOENT);
	zt_spool_close(s);
	/* Only once: reopening finds nothing more to retry. */
	assert_int_equal(zt_spool_open(dir, 1 << 20, &s, err, sizeof(err)), 0);
	zt_spool_get_stats(s, &st);
	assert_int_equal(st.format1_retried, 0);
	zt_spool_close(s);
}

/* A held segment (write-ahead) is durable but not replayed until released. */
static void test_held_segments(void **state)
{
	struct zt_spool *s;
	struct zt_spool_seg seg;
	struct zt_spool_stats st;
	struct zt_flow_record in[3];
	uint64_t a, b;
	char err[256];

	for (int i = 0; i < 3; i++)
		mkrec(&in[i], i);
	assert_int_equal(zt_spool_open(dir, 1 << 20, &s, err, sizeof(err)), 0);
	assert_int_equal(zt_spool_write_held(s, in, 2, &a, err, sizeof(err)), 0);
	assert_int_equal(zt_spool_write_held(s, in + 2, 1, &b, err, sizeof(err)), 0);
	assert_int_equal(count_files("seg-"), 2); /* on disk */
	zt_spool_get_stats(s, &st);
	assert_int_equal(st.held_segments, 2);
	assert_int_equal(st.segments, 0);
	assert_true(st.held_bytes > 0 && st.held_bytes == st.bytes);
	assert_int_equal(zt_spool_next(s, &seg, err, sizeof(err)), -ENOENT);
	/* Written: deleted. Not written: an ordinary segment. */
	assert_int_equal(zt_spool_release(s, a, false, err, sizeof(err)), 0);
	assert_int_equal(zt_spool_release(s, b, true, err, sizeof(err)), 0);
	assert_int_equal(zt_spool_release(s, b, true, err, sizeof(err)), -ENOENT);
	assert_int_equal(count_files("seg-"), 1);
	zt_spool_get_stats(s, &st);
	assert_int_equal(st.held_segments, 0);
	assert_int_equal(st.held_bytes, 0);
	assert_int_equal(st.segments, 1);
	assert_int_equal(zt_spool_next(s, &seg, err, sizeof(err)), 0);
	assert_int_equal(seg.seq, b);
	assert_int_equal(seg.n, 1);
	assert_memory_equal(&seg.recs[0], &in[2], sizeof(in[2]));
	zt_spool_seg_free(&seg);
	/* After a crash a held segment is an ordinary one. */
	assert_int_equal(zt_spool_write_held(s, in, 3, &a, err, sizeof(err)), 0);
	zt_spool_close(s);
	assert_int_equal(zt_spool_open(dir, 1 << 20, &s, err, sizeof(err)), 0);
	zt_spool_get_stats(s, &st);
	assert_int_equal(st.segments, 2);
	assert_int_equal(zt_spool_next(s, &seg, err, sizeof(err)), 0);
	assert_int_equal(seg.seq, b);
	assert_int_equal(zt_spool_done(s, &seg, err, sizeof(err)), 0);
	assert_int_equal(zt_spool_next(s, &seg, err, sizeof(err)), 0);
	assert_int_equal(seg.seq, a);
	assert_int_equal(seg.n, 3);
	assert_int_equal(zt_spool_done(s, &seg, err, sizeof(err)), 0);
	zt_spool_get_stats(s, &st);
	assert_int_equal(st.bytes, 0);
	zt_spool_close(s);
}

/* What is written now is format 3 and reads back the same, identities included. */
static void test_format3_written(void **state)
{
	struct zt_flow_record in, *out = NULL;
	uint8_t *buf;
	size_t len, n = 0;
	char why[128];

	mkrec(&in, 3);
	in.protocol = 255;
	in.mtls = true;
	strcpy(in.source_spiffe_id, "spiffe://cluster.local/ns/shop/sa/web");
	strcpy(in.dest_spiffe_id, "spiffe://cluster.local/ns/shop/sa/db");
	assert_int_equal(zt_spool_encode(&in, 1, &buf, &len), 0);
	assert_memory_equal(buf, "ZTSPOOL3", 8);
	assert_int_equal(zt_spool_decode(buf, len, &out, &n, why, sizeof(why)), 0);
	assert_int_equal(out->protocol, 255);
	assert_true(out->mtls);
	assert_string_equal(out->source_spiffe_id, in.source_spiffe_id);
	assert_string_equal(out->dest_spiffe_id, in.dest_spiffe_id);
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

/* A segment with a consistent envelope (sizes, CRCs) around payload; seg holds the magic. */
static size_t envelope(uint8_t *seg, uint32_t cnt, uint32_t ulen, const uint8_t *payload,
		       uint32_t clen)
{
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

	mkrec(&in[0], 1);
	mkrec(&in[1], 2);
	assert_int_equal(zt_spool_encode(in, 2, &good, &glen), 0);
	memcpy(big, good, 8); /* the magic the encoder writes */
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
		cmocka_unit_test_setup_teardown(test_format1_segment, setup, teardown),
		cmocka_unit_test_setup_teardown(test_format2_segment, setup, teardown),
		cmocka_unit_test_setup_teardown(test_format3_written, setup, teardown),
		cmocka_unit_test_setup_teardown(test_format1_rejected_retried, setup, teardown),
		cmocka_unit_test_setup_teardown(test_held_segments, setup, teardown),
		cmocka_unit_test_setup_teardown(test_header_bounds, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
