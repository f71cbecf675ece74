// SPDX-License-Identifier: GPL-2.0-only
/*
 * The audit journal (state_dir/audit/audit-<16 hex digits>.journal), read at
 * every start and while running.
 *
 * Input: byte 0 holds flags; bit 0 set = 8 bytes follow that the harness
 * skips (they were the cursor of the single-file journal this harness was
 * first written for; kept so that its inputs keep their meaning); bit 1 set
 * = the harness makes the CRC of every record it can delimit right, so that
 * the fuzzer gets past them. The rest is the journal's bytes.
 *
 * 1. The pure decoder, zt_auditq_decode_record, over every offset a
 *    resynchronising reader visits (a record, else one byte on): each
 *    record lies inside the buffer, its four fields fill it exactly, and it
 *    encodes back to the same bytes; anything else is -EBADMSG or -ENODATA.
 * 2. The public API without a database (zt_auditq_open("")), the bytes as
 *    the only segment: opening never crashes, and after one post a reopen
 *    finds exactly the records the first open kept plus the new one (the
 *    single-file journal lost that event when a torn tail was cut and the
 *    cursor left pointing past it: regress/audit_journal/).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "fuzz.h"
#include "agent/log.h"
#include "records/auditq.h"

static char dir[256], journal[300];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	snprintf(dir, sizeof(dir), "%s/audit", fuzz_tmpdir("audit"));
	snprintf(journal, sizeof(journal), "%s/audit-0000000000000001.journal", dir);
	mkdir(dir, 0700);
	/* The repair and replay lines are expected here: keep stderr for findings. */
	zt_log_set_level(ZT_LOG_ERROR);
	return 0;
}

static void put(const char *path, const uint8_t *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0 || (n && write(fd, p, n) != (ssize_t)n))
		abort();
	close(fd);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static int rm_one(const char *p, const struct stat *sb, int type, struct FTW *ftw)
{
	if (ftw->level > 0)
		remove(p);
	return 0;
}

static void decode_walk(const uint8_t *j, size_t n)
{
	size_t p = 0;

	while (p < n) {
		struct zt_auditq_record rec;
		int r = zt_auditq_decode_record(j + p, n - p, &rec);
		uint32_t sum = ZT_AUDITQ_REC_HDR;
		uint8_t *again;
		ssize_t elen;
		char *f[4];

		if (r == -ENODATA)
			break;
		if (r < 0) {
			FUZZ_CHECK(r == -EBADMSG, "error %d at offset %zu", r, p);
			p++;
			continue;
		}
		FUZZ_CHECK((size_t)r == rec.len && rec.len >= ZT_AUDITQ_REC_MIN &&
				   rec.len <= ZT_AUDITQ_REC_MAX && rec.len <= n - p,
			   "record of %d bytes at offset %zu, %zu there", r, p, n - p);
		for (int i = 0; i < 4; i++) {
			FUZZ_CHECK((const uint8_t *)rec.field[i] >= j + p &&
					   (const uint8_t *)rec.field[i] + rec.field_len[i] <=
						   j + p + rec.len,
				   "field %d outside its record", i);
			sum += 4 + rec.field_len[i];
			f[i] = fuzz_cstr((const uint8_t *)rec.field[i], rec.field_len[i]);
		}
		FUZZ_CHECK(sum == rec.len, "fields fill %u of %u bytes", sum, rec.len);
		again = malloc(rec.len);
		if (!again)
			abort();
		elen = zt_auditq_encode_record(rec.time_us, (const char *const *)f, again, rec.len);
		FUZZ_CHECK(elen == (ssize_t)rec.len && !memcmp(again, j + p, rec.len),
			   "a decoded record does not encode back to its bytes (%zd)", elen);
		free(again);
		for (int i = 0; i < 4; i++)
			free(f[i]);
		p += rec.len;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct zt_auditq_stats st1, st2;
	struct zt_auditq *q;
	size_t off = 1, n;
	char err[512];
	uint8_t *j;

	if (size < 1)
		return 0;
	nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	if ((data[0] & 1) && size >= 9)
		off = 9;
	n = size - off;
	j = malloc(n + 1);
	if (!j)
		abort();
	memcpy(j, data + off, n);
	if (data[0] & 2) {
		size_t p = 0;

		while (n - p >= 16) {
			uint32_t len = le32(j + p);

			if (len < 16 || len > n - p)
				break;
			put_le32(j + p + 4, (uint32_t)crc32(0L, j + p + 8, len - 8));
			p += len;
		}
	}
	decode_walk(j, n);
	put(journal, j, n);
	free(j);

	if (zt_auditq_open("", dir, "fuzz", 1u << 20, &q, err, sizeof(err)) < 0)
		return 0;
	zt_auditq_get_stats(q, &st1);
	zt_auditq_post(q, "fuzz.check", "fuzzer", "journal", "{\"n\":1}");
	zt_auditq_close(q);
	FUZZ_CHECK(zt_auditq_open("", dir, "fuzz", 1u << 20, &q, err, sizeof(err)) == 0,
		   "the journal written by the first open does not open: %s", err);
	zt_auditq_get_stats(q, &st2);
	FUZZ_CHECK(st2.pending == st1.pending + 1,
		   "pending %llu after the first open, %llu after a post and a reopen",
		   (unsigned long long)st1.pending, (unsigned long long)st2.pending);
	zt_auditq_close(q);
	return 0;
}
