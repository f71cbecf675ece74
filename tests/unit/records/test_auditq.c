// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests: the audit queue's journal without a database (events kept,
 * replayed after a restart, segments bounded on disk), the record decoder
 * on the bytes of the fuzzing report, and crafted journal and cursor files
 * (damaged records resynchronised and quarantined, misaligned and bad
 * cursors, files that are not segments), plus the JSON escaping of hostile
 * text. The path into PostgreSQL (migrations on an empty database,
 * dead letters, a failing cursor write, the file bound while the writer
 * drains) is covered by tests/integration/audit_journal.sh and
 * tests/integration/audit_fresh_db.sh.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <cmocka.h>

#include "records/auditq.h"

static char dir[64];

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/zt-auditq-test.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd);
}

static struct zt_auditq *open_q(uint64_t max)
{
	struct zt_auditq *q = NULL;
	char err[512] = "";

	/* No database: events are only journaled. */
	assert_int_equal(zt_auditq_open("", dir, "node-a", max, &q, err, sizeof(err)), 0);
	assert_non_null(q);
	return q;
}

static uint64_t pending(struct zt_auditq *q)
{
	struct zt_auditq_stats st;

	zt_auditq_get_stats(q, &st);
	return st.pending;
}

static void hex2bin(const char *hex, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		assert_int_equal(sscanf(hex + 2 * i, "%2hhx", &out[i]), 1);
}

static void write_file(const char *path, const void *b, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, b, n), (ssize_t)n);
	close(fd);
}

/* The whole file into a malloc'ed buffer; *n its size. */
static uint8_t *read_file(const char *path, size_t *n)
{
	struct stat sb;
	uint8_t *b;
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &sb), 0);
	b = malloc((size_t)sb.st_size + 1);
	assert_non_null(b);
	assert_int_equal(read(fd, b, (size_t)sb.st_size), sb.st_size);
	close(fd);
	*n = (size_t)sb.st_size;
	return b;
}

/* Files in sub (relative to dir, "" for dir itself) whose name starts with prefix. */
static int count_files(const char *sub, const char *prefix, char *last, size_t lastlen)
{
	char p[300];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(p, sizeof(p), "%s/%s", dir, sub);
	d = opendir(p);
	if (!d)
		return 0;
	while ((de = readdir(d)))
		if (!strncmp(de->d_name, prefix, strlen(prefix))) {
			n++;
			if (last)
				snprintf(last, lastlen, "%s/%s", p, de->d_name);
		}
	closedir(d);
	return n;
}

/* The journal's only segment file. */
static void only_segment(char *path, size_t n)
{
	assert_int_equal(count_files("", "audit-", path, n), 1);
}

/* Decodes every record of a file with the pure decoder: subjects joined by ','. */
static int subjects(const char *path, char *out, size_t n)
{
	size_t len, o = 0;
	uint8_t *b = read_file(path, &len);
	int recs = 0;

	out[0] = '\0';
	for (size_t p = 0; p < len;) {
		struct zt_auditq_record r;
		int l = zt_auditq_decode_record(b + p, len - p, &r);

		if (l <= 0)
			break;
		o += (size_t)snprintf(out + o, n - o, "%s%.*s", recs ? "," : "",
				      (int)r.field_len[2], r.field[2]);
		p += (size_t)l;
		recs++;
	}
	free(b);
	return recs;
}

static void test_journal_survives_restart(void **state)
{
	struct zt_auditq *q = open_q(0);

	assert_int_equal(
		zt_auditq_post(q, "policy.apply", "ztagent@n", "/etc/p", "{\"sha256\":\"ab\"}"), 0);
	assert_int_equal(zt_auditq_post(q, "block.add", "ztagent@n", "198.18.0.1/32", NULL), 0);
	assert_int_equal(zt_auditq_post(q, "endpoint.del", "ztagent@n", "ns/x", "  { }"), 0);
	assert_int_equal(pending(q), 3);
	zt_auditq_close(q);

	q = open_q(0);
	assert_int_equal(pending(q), 3);
	zt_auditq_close(q);
}

static void test_detail_must_be_object(void **state)
{
	struct zt_auditq *q = open_q(0);

	assert_int_equal(zt_auditq_post(q, "x", "a", "s", "[1,2]"), -EINVAL);
	assert_int_equal(zt_auditq_post(q, "x", "a", "s", "\"text\""), -EINVAL);
	assert_int_equal(pending(q), 0);
	zt_auditq_close(q);
}

static void test_torn_tail_is_cut(void **state)
{
	struct zt_auditq *q = open_q(0);
	char path[600], qf[600], subj[600];
	struct stat sb;
	size_t n;
	uint8_t *b;
	int fd;

	for (int i = 0; i < 4; i++)
		assert_int_equal(zt_auditq_post(q, "k", "a", "s", "{}"), 0);
	zt_auditq_close(q);
	/* The agent died inside write(): half a record at the end. */
	only_segment(path, sizeof(path));
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(truncate(path, sb.st_size - 7), 0);
	q = open_q(0);
	assert_int_equal(pending(q), 3);
	zt_auditq_close(q);
	/* The torn bytes are kept aside, not thrown away. */
	assert_int_equal(count_files("quarantine", "audit-", qf, sizeof(qf)), 1);
	b = read_file(qf, &n);
	assert_int_equal(n, (size_t)sb.st_size / 4 - 7);
	free(b);
	/* Garbage appended: cut too, the whole records stay. */
	fd = open(path, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "garbage-garbage-garbage", 23), 23);
	close(fd);
	q = open_q(0);
	assert_int_equal(pending(q), 3);
	assert_int_equal(zt_auditq_post(q, "k", "a", "s", "{}"), 0);
	assert_int_equal(pending(q), 4);
	zt_auditq_close(q);
	q = open_q(0);
	assert_int_equal(pending(q), 4);
	zt_auditq_close(q);
	assert_int_equal(subjects(path, subj, sizeof(subj)), 4);
	assert_int_equal(count_files("quarantine", "audit-", NULL, 0), 2);
}

static void test_bound_counts_drops(void **state)
{
	struct zt_auditq *q = open_q(4096);
	struct zt_auditq_stats st;
	int ok = 0, full = 0;

	for (int i = 0; i < 200; i++) {
		int r = zt_auditq_post(q, "policy.violation", "a",
				       "tcp 198.18.0.1:1 -> 198.18.0.2:2",
				       "{\"verdict\":\"denied\"}");

		if (r == 0)
			ok++;
		else if (r == -ENOSPC)
			full++;
	}
	zt_auditq_get_stats(q, &st);
	assert_true(ok > 0 && full > 0);
	assert_int_equal(ok + full, 200);
	assert_int_equal(st.dropped, (uint64_t)full);
	assert_int_equal(st.pending, (uint64_t)ok);
	assert_true(st.pending_bytes <= 4096);
	assert_true(st.journal_bytes <= 4096);
	zt_auditq_close(q);
}

/* The bound is on the files: segments of max/8, their sizes add up to at most max. */
static void test_segments_bound_the_files(void **state)
{
	struct zt_auditq *q = open_q(256 << 10);
	struct zt_auditq_stats st;
	char detail[600], p[600];
	struct dirent *de;
	uint64_t total = 0;
	int ok = 0, segs = 0;
	DIR *d;

	memset(detail, 0, sizeof(detail));
	snprintf(detail, sizeof(detail), "{\"pad\":\"%0500d\"}", 7);
	for (int i = 0; i < 2000; i++)
		if (zt_auditq_post(q, "policy.violation", "a", "s", detail) == 0)
			ok++;
	zt_auditq_get_stats(q, &st);
	assert_true(ok > 100 && ok < 2000);
	assert_int_equal(st.pending, (uint64_t)ok);
	assert_true(st.segments >= 7);
	zt_auditq_close(q);
	d = opendir(dir);
	assert_non_null(d);
	while ((de = readdir(d))) {
		struct stat sb;

		if (strncmp(de->d_name, "audit-", 6))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		assert_int_equal(stat(p, &sb), 0);
		assert_true(sb.st_size <= (32 << 10) + 700);
		total += (uint64_t)sb.st_size;
		segs++;
	}
	closedir(d);
	assert_true(segs >= 7);
	assert_true(total <= 256 << 10);
	q = open_q(256 << 10);
	assert_int_equal(pending(q), (uint64_t)ok);
	zt_auditq_close(q);
}

/* The two records of the fuzzing report: hex as given there. */
static const char rec1_hex[] = "2000000007afe422010000000000000000000000000000000000000000000000";
static const char rec2_hex[] = "200000007d1ae3b20000000000000000ffff0000000000000000000000000000";

static void test_decoder_on_report_bytes(void **state)
{
	uint8_t b[64];
	struct zt_auditq_record r, untouched;

	hex2bin(rec1_hex, b, 32);
	hex2bin(rec2_hex, b + 32, 32);
	assert_int_equal(zt_auditq_decode_record(b, 64, &r), 32);
	assert_int_equal(r.len, 32);
	assert_int_equal(r.time_us, 1);
	for (int i = 0; i < 4; i++)
		assert_int_equal(r.field_len[i], 0);
	/* Correct crc32, first field claiming 0xffff bytes: not a record. */
	memset(&untouched, 0x5a, sizeof(untouched));
	r = untouched;
	assert_int_equal(zt_auditq_decode_record(b + 32, 32, &r), -EBADMSG);
	assert_memory_equal(&r, &untouched, sizeof(r));
	/* Every prefix of a record is "ends inside a record" or "not a record", never one. */
	for (size_t n = 0; n < 32; n++)
		assert_true(zt_auditq_decode_record(b, n, &r) < 0);
	assert_int_equal(zt_auditq_decode_record(b, 20, &r), -ENODATA);
	assert_int_equal(zt_auditq_decode_record(NULL, 0, &r), -ENODATA);
}

static void test_decoder_rules(void **state)
{
	const char *f[4] = { "block.add", "ztctl:uid=0", "198.18.0.1/32", "{\"ttl_s\":60}" };
	char kind[200];
	uint8_t b[512], c[512];
	struct zt_auditq_record r;
	ssize_t len = zt_auditq_encode_record(77, f, b, sizeof(b));

	assert_true(len > 0);
	assert_int_equal(zt_auditq_encode_record(77, f, NULL, 0), len);
	assert_int_equal(zt_auditq_decode_record(b, (size_t)len, &r), len);
	assert_int_equal(r.time_us, 77);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(r.field_len[i], strlen(f[i]));
		assert_memory_equal(r.field[i], f[i], strlen(f[i]));
	}
	/* Any one byte changed is refused (crc32, lengths or structure). */
	for (ssize_t i = 0; i < len; i++) {
		memcpy(c, b, (size_t)len);
		c[i] ^= 0x20;
		assert_true(zt_auditq_decode_record(c, (size_t)len, &r) < 0);
	}
	/* A NUL inside a field, even with a matching crc32. */
	memcpy(c, b, (size_t)len);
	c[16 + 4 + 2] = '\0';
	{
		uint32_t crc = (uint32_t)crc32(0L, c + 8, (uInt)(len - 8));

		memcpy(c + 4, &crc, 4);
	}
	assert_int_equal(zt_auditq_decode_record(c, (size_t)len, &r), -EBADMSG);
	/* Fields that do not fill the record: length says 4 more bytes, crc32 matches. */
	memcpy(c, b, (size_t)len);
	memset(c + len, 0, 4);
	{
		uint32_t l = (uint32_t)len + 4, crc;

		memcpy(c, &l, 4);
		crc = (uint32_t)crc32(0L, c + 8, (uInt)(l - 8));
		memcpy(c + 4, &crc, 4);
	}
	assert_int_equal(zt_auditq_decode_record(c, (size_t)len + 4, &r), -EBADMSG);
	/* What post never writes is not encoded. */
	memset(kind, 'k', sizeof(kind) - 1);
	kind[sizeof(kind) - 1] = '\0';
	f[0] = kind;
	assert_int_equal(zt_auditq_encode_record(1, f, b, sizeof(b)), -EINVAL);
}

/* The journal of the fuzzing report: the bad record is set aside, the good one stays. */
static void test_report_journal(void **state)
{
	char path[600], qf[600];
	uint8_t b[64], *got;
	size_t n;
	struct zt_auditq *q;

	hex2bin(rec1_hex, b, 32);
	hex2bin(rec2_hex, b + 32, 32);
	snprintf(path, sizeof(path), "%s/audit.journal", dir);
	write_file(path, b, 64);
	q = open_q(0);
	assert_int_equal(pending(q), 1);
	zt_auditq_close(q);
	assert_int_equal(count_files("quarantine", "audit-", qf, sizeof(qf)), 1);
	got = read_file(qf, &n);
	assert_int_equal(n, 32);
	assert_memory_equal(got, b + 32, 32);
	free(got);
	/* Once repaired, nothing more to set aside. */
	q = open_q(0);
	assert_int_equal(pending(q), 1);
	zt_auditq_close(q);
	assert_int_equal(count_files("quarantine", "audit-", NULL, 0), 1);
}

/* Four records posted; the offsets of their starts into off[] (5 entries). */
static void four_records(char *path, uint64_t off[5])
{
	struct zt_auditq *q = open_q(0);
	size_t n;
	uint8_t *b;

	for (int i = 1; i <= 4; i++) {
		char s[8];

		snprintf(s, sizeof(s), "s%d", i);
		assert_int_equal(zt_auditq_post(q, "k", "a", s, "{\"n\":1}"), 0);
	}
	zt_auditq_close(q);
	only_segment(path, 600);
	b = read_file(path, &n);
	off[0] = 0;
	for (int i = 0; i < 4; i++) {
		struct zt_auditq_record r;

		assert_true(zt_auditq_decode_record(b + off[i], n - off[i], &r) > 0);
		off[i + 1] = off[i] + r.len;
	}
	assert_int_equal(off[4], n);
	free(b);
}

static void test_flipped_byte_resync(void **state)
{
	char path[600], qf[600], subj[600];
	uint64_t off[5];
	size_t n;
	uint8_t *b;
	struct zt_auditq *q;

	four_records(path, off);
	b = read_file(path, &n);
	b[off[1] + 24] ^= 0x01; /* inside record 2 */
	write_file(path, b, n);
	free(b);
	q = open_q(0);
	assert_int_equal(pending(q), 3);
	zt_auditq_close(q);
	/* Records 1, 3 and 4 stay, in order; record 2 is in quarantine, whole. */
	assert_int_equal(subjects(path, subj, sizeof(subj)), 3);
	assert_string_equal(subj, "s1,s3,s4");
	assert_int_equal(count_files("quarantine", "audit-", qf, sizeof(qf)), 1);
	b = read_file(qf, &n);
	assert_int_equal(n, off[2] - off[1]);
	free(b);
}

/* Random bytes changed in 1 to 3 records: exactly the others stay, every time. */
static void test_random_damage(void **state)
{
	char path[600], cmd[700];
	uint64_t off[5], rng = 0x9e3779b97f4a7c15ull;
	size_t n;
	uint8_t *orig;

	four_records(path, off);
	orig = read_file(path, &n);
	for (int it = 0; it < 60; it++) {
		uint8_t *b = malloc(n);
		bool touched[4] = { false };
		int flips, hit = 0;
		struct zt_auditq *q;

		assert_non_null(b);
		memcpy(b, orig, n);
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		flips = 1 + (int)(rng >> 62) % 3;
		for (int f = 0; f < flips; f++) {
			size_t at;

			rng = rng * 6364136223846793005ull + 1442695040888963407ull;
			at = (size_t)(rng >> 33) % n;
			b[at] ^= (uint8_t)(1u << ((rng >> 20) & 7));
			for (int r = 0; r < 4; r++)
				if (at >= off[r] && at < off[r + 1])
					touched[r] = true;
		}
		for (int r = 0; r < 4; r++)
			hit += touched[r];
		/* A fresh journal each time: the four records, some of them damaged. */
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'/audit.cursor '%s'/quarantine", dir, dir);
		assert_int_equal(system(cmd), 0);
		write_file(path, b, n);
		q = open_q(0);
		if (pending(q) != (uint64_t)(4 - hit))
			fail_msg("iteration %d: %d record(s) damaged, %llu pending", it, hit,
				 (unsigned long long)pending(q));
		zt_auditq_close(q);
		free(b);
	}
	free(orig);
}

/* Garbage between records, and a record's length field damaged: both resynchronised. */
static void test_resync_over_garbage(void **state)
{
	char path[600], subj[600];
	uint64_t off[5];
	size_t n;
	uint8_t *b, *c;
	struct zt_auditq *q;

	four_records(path, off);
	b = read_file(path, &n);
	c = malloc(n + 1000);
	assert_non_null(c);
	/* record 1, 1000 bytes of noise, records 2..4, with record 3's length field broken */
	memcpy(c, b, off[1]);
	for (int i = 0; i < 1000; i++)
		c[off[1] + i] = (uint8_t)(i * 37 + 11);
	memcpy(c + off[1] + 1000, b + off[1], n - off[1]);
	c[off[1] + 1000 + (off[2] - off[1])] = 0xff;
	write_file(path, c, n + 1000);
	free(b);
	free(c);
	q = open_q(0);
	assert_int_equal(pending(q), 3);
	zt_auditq_close(q);
	assert_int_equal(subjects(path, subj, sizeof(subj)), 3);
	assert_string_equal(subj, "s1,s2,s4");
	assert_int_equal(count_files("quarantine", "audit-", NULL, 0), 2);
}

/* A single-file journal that grew (the old bound counted only what was pending): its done part goes. */
static void test_legacy_done_part_dropped(void **state)
{
	struct zt_auditq *q = open_q(0);
	struct zt_auditq_stats st;
	char path[600], legacy[600], cursor[600], subj[4000];
	size_t n, o = 0;
	uint8_t *b;

	for (int i = 0; i < 200; i++) {
		char s[16];

		snprintf(s, sizeof(s), "s%d", i);
		assert_int_equal(zt_auditq_post(q, "k", "a", s, "{\"pad\":\"......\"}"), 0);
	}
	zt_auditq_close(q);
	only_segment(path, sizeof(path));
	b = read_file(path, &n);
	for (int i = 0; i < 190; i++) {
		struct zt_auditq_record r;

		assert_true(zt_auditq_decode_record(b + o, n - o, &r) > 0);
		o += r.len;
	}
	free(b);
	snprintf(legacy, sizeof(legacy), "%s/audit.journal", dir);
	assert_int_equal(rename(path, legacy), 0);
	snprintf(cursor, sizeof(cursor), "%s/audit.cursor", dir);
	write_file(cursor, &(uint64_t){ o }, 8);
	/* max_bytes 64 KiB: segments of 8 KiB, less than the 190 records done. */
	q = open_q(64 << 10);
	zt_auditq_get_stats(q, &st);
	assert_int_equal(st.pending, 10);
	assert_int_equal(st.journal_bytes, n - o);
	zt_auditq_close(q);
	only_segment(path, sizeof(path));
	assert_int_equal(subjects(path, subj, sizeof(subj)), 10);
	assert_string_equal(subj, "s190,s191,s192,s193,s194,s195,s196,s197,s198,s199");
	assert_int_equal(count_files("quarantine", "", NULL, 0), 0);
}

/* A cursor inside record 2 (the single-file format's): records 2..4 are replayed. */
static void test_misaligned_cursor(void **state)
{
	char path[600], legacy[600], cursor[600], subj[600];
	uint64_t off[5], c;
	struct zt_auditq *q;

	four_records(path, off);
	snprintf(legacy, sizeof(legacy), "%s/audit.journal", dir);
	assert_int_equal(rename(path, legacy), 0);
	snprintf(cursor, sizeof(cursor), "%s/audit.cursor", dir);
	c = off[1] + 5; /* little-endian u64, as the single-file journal wrote it */
	write_file(cursor, &c, 8);
	q = open_q(0);
	assert_int_equal(pending(q), 3);
	zt_auditq_close(q);
	only_segment(path, sizeof(path));
	assert_int_equal(subjects(path, subj, sizeof(subj)), 4);
	/* Nothing was damaged: nothing in quarantine. */
	assert_int_equal(count_files("quarantine", "audit-", NULL, 0), 0);
	/* The cursor was rewritten in the new format, on record 2. */
	q = open_q(0);
	assert_int_equal(pending(q), 3);
	zt_auditq_close(q);
}

/* A cursor file that is not one: moved aside, everything replayed. */
static void test_bad_cursor_file(void **state)
{
	char path[600], cursor[600];
	uint64_t off[5];
	uint8_t junk[20];
	struct zt_auditq *q;

	four_records(path, off);
	snprintf(cursor, sizeof(cursor), "%s/audit.cursor", dir);
	memset(junk, 0x41, sizeof(junk));
	write_file(cursor, junk, sizeof(junk)); /* 20 bytes, crc32 wrong */
	q = open_q(0);
	assert_int_equal(pending(q), 4);
	zt_auditq_close(q);
	assert_int_equal(count_files("quarantine", "audit.cursor", NULL, 0), 1);
	/* A directory where the cursor should be: the same. */
	assert_int_equal(unlink(cursor), 0);
	assert_int_equal(mkdir(cursor, 0700), 0);
	q = open_q(0);
	assert_int_equal(pending(q), 4);
	zt_auditq_close(q);
	assert_int_equal(count_files("quarantine", "audit.cursor", NULL, 0), 2);
}

/* A single-file journal beside segments (an older agent ran in between): sent after them. */
static void test_legacy_beside_segments(void **state)
{
	char path[600], legacy[600];
	uint64_t off[5];
	uint8_t b[64];
	struct zt_auditq *q;

	four_records(path, off);
	hex2bin(rec1_hex, b, 32);
	memcpy(b + 32, b, 32);
	snprintf(legacy, sizeof(legacy), "%s/audit.journal", dir);
	write_file(legacy, b, 64);
	q = open_q(0);
	assert_int_equal(pending(q), 6);
	zt_auditq_close(q);
	assert_int_equal(access(legacy, F_OK), -1);
	assert_int_equal(count_files("", "audit-0000000000000002.journal", NULL, 0), 1);
}

/* Files that only look like segments, and a segment of pure noise. */
static void test_bad_state_files(void **state)
{
	char p[600], path[600];
	uint64_t off[5];
	uint8_t noise[70000];
	struct zt_auditq *q;

	four_records(path, off);
	snprintf(p, sizeof(p), "%s/audit-zz.journal", dir);
	write_file(p, "x", 1);
	snprintf(p, sizeof(p), "%s/audit-00000000000000ff.journal", dir);
	assert_int_equal(mkdir(p, 0700), 0);
	for (size_t i = 0; i < sizeof(noise); i++)
		noise[i] = (uint8_t)(i * 2654435761u >> 13);
	/* Newer than the segment four_records wrote (1), so it is read. */
	snprintf(p, sizeof(p), "%s/audit-0000000000000002.journal", dir);
	write_file(p, noise, sizeof(noise));
	q = open_q(0);
	assert_int_equal(pending(q), 4);
	assert_int_equal(zt_auditq_post(q, "k", "a", "s5", "{}"), 0);
	zt_auditq_close(q);
	assert_int_equal(count_files("quarantine", "audit-zz.journal", NULL, 0), 1);
	assert_int_equal(count_files("quarantine", "audit-00000000000000ff.journal", NULL, 0), 1);
	/* The noise went to quarantine (within its bound) and its segment is empty now. */
	assert_true(count_files("quarantine", "audit-0000000000000002-", NULL, 0) >= 1);
	q = open_q(0);
	assert_int_equal(pending(q), 5);
	zt_auditq_close(q);
}

static void test_json_escape(void **state)
{
	char b[600];

	zt_json_escape("plain", b, sizeof(b));
	assert_string_equal(b, "plain");
	zt_json_escape("a\"b\\c\nd\te", b, sizeof(b));
	assert_string_equal(b, "a\\\"b\\\\c\\u000ad\\u0009e");
	/* Not UTF-8: the byte becomes the text \xff (its backslash escaped). */
	zt_json_escape("x\xffy", b, sizeof(b));
	assert_string_equal(b, "x\\\\xffy");
	/* Overlong and surrogate encodings are not valid UTF-8 either. */
	zt_json_escape("\xc0\xaf", b, sizeof(b));
	assert_string_equal(b, "\\\\xc0\\\\xaf");
	zt_json_escape("\xed\xa0\x80", b, sizeof(b));
	assert_string_equal(b, "\\\\xed\\\\xa0\\\\x80");
	/* Valid multi-byte text stays as it is. */
	zt_json_escape("\xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x94\x92", b, sizeof(b));
	assert_string_equal(b, "\xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x94\x92");
	/* Truncation never splits a character or an escape. */
	zt_json_escape("\xe6\x97\xa5\xe6\x9c\xac", b, 5);
	assert_string_equal(b, "\xe6\x97\xa5");
	zt_json_escape("ab\"", b, 4);
	assert_string_equal(b, "ab");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_journal_survives_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_detail_must_be_object, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_tail_is_cut, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bound_counts_drops, setup, teardown),
		cmocka_unit_test_setup_teardown(test_segments_bound_the_files, setup, teardown),
		cmocka_unit_test(test_decoder_on_report_bytes),
		cmocka_unit_test(test_decoder_rules),
		cmocka_unit_test_setup_teardown(test_report_journal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flipped_byte_resync, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resync_over_garbage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_random_damage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_misaligned_cursor, setup, teardown),
		cmocka_unit_test_setup_teardown(test_legacy_done_part_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_cursor_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_legacy_beside_segments, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_state_files, setup, teardown),
		cmocka_unit_test(test_json_escape),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
