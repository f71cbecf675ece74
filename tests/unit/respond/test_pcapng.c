// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests: the pcapng.gz writer, read back by tshark (a real reader,
 * not our own parser): addresses, ports, lengths, interface names,
 * timestamps, comments, and a file still open after a flush.
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
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "respond/pcapng.h"

/* An Ethernet + IPv4 + TCP SYN frame from 198.18.0.1:sport to 198.18.1.5:dport, payload bytes. */
static size_t frame(uint8_t *f, uint16_t sport, uint16_t dport, size_t payload)
{
	uint8_t *ip = f + 14, *tcp = ip + 20;
	uint32_t sum = 0;
	uint16_t tot = (uint16_t)(20 + 20 + payload);

	memset(f, 0, 14 + tot);
	memcpy(f, "\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00", 14);
	ip[0] = 0x45;
	ip[2] = (uint8_t)(tot >> 8);
	ip[3] = (uint8_t)tot;
	ip[8] = 64;
	ip[9] = 6;
	memcpy(ip + 12, "\xc6\x12\x00\x01\xc6\x12\x01\x05", 8);
	for (int i = 0; i < 20; i += 2)
		sum += (uint32_t)ip[i] << 8 | ip[i + 1];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	ip[10] = (uint8_t)(~sum >> 8);
	ip[11] = (uint8_t)~sum;
	tcp[0] = (uint8_t)(sport >> 8);
	tcp[1] = (uint8_t)sport;
	tcp[2] = (uint8_t)(dport >> 8);
	tcp[3] = (uint8_t)dport;
	tcp[12] = 5 << 4;
	tcp[13] = 0x02;
	tcp[14] = 0xff;
	for (size_t i = 0; i < payload; i++)
		tcp[20 + i] = (uint8_t)('a' + i % 26);
	return 14 + tot;
}

/* tshark's fields for every packet of path, one line each, into buf. */
static int tshark(const char *path, const char *fields, char *buf, size_t n)
{
	char cmd[1024];
	FILE *p;
	size_t got;

	snprintf(cmd, sizeof(cmd), "tshark -n -r '%s' -T fields -E separator='|' %s 2>/dev/null",
		 path, fields);
	p = popen(cmd, "r");
	if (!p)
		return -errno;
	got = fread(buf, 1, n - 1, p);
	buf[got] = '\0';
	return pclose(p);
}

static char dir[64];

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/zt-pcapng.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_tshark_reads_it(void **state)
{
	struct zt_pcapng *w, *w2;
	char path[128], out[8192], *line, *save = NULL;
	uint8_t f[2048];
	uint64_t t0 = 1764763200123456789ULL; /* 2025-12-03T12:00:00.123456789Z */
	struct stat st;
	int rows = 0;

	snprintf(path, sizeof(path), "%s/a.pcapng.gz", dir);
	assert_int_equal(zt_pcapng_open(path, 96, "incident 0191-test", &w), 0);
	assert_int_equal(zt_pcapng_open(path, 96, NULL, &w2), -EEXIST);
	for (int i = 0; i < 50; i++) {
		size_t n = frame(f, (uint16_t)(40000 + i), (uint16_t)(1 + i), (size_t)i * 10);

		assert_int_equal(zt_pcapng_write(w, t0 + (uint64_t)i * 1000, i < 25 ? 7 : 9,
						 i < 25 ? "uplink0" : NULL, true,
						 i % 2 ? "verdict=drop reason=blocklist" : NULL, f,
						 (uint32_t)n, (uint32_t)n),
				 0);
	}
	assert_int_equal(zt_pcapng_packets(w), 50);
	/* Readable while still open, after a flush. */
	assert_int_equal(zt_pcapng_flush(w), 0);
	assert_true(zt_pcapng_size(w) > 100);
	/* A complete gzip stream: tshark reads all 50 and exits 0. */
	assert_int_equal(tshark(path, "-e frame.number", out, sizeof(out)), 0);
	assert_true(strlen(out) > 3 && !strcmp(out + strlen(out) - 3, "50\n"));
	/* More after the flush: a second gzip member, still one stream. */
	for (int i = 0; i < 3; i++) {
		size_t n = frame(f, 1, 2, 0);

		assert_int_equal(zt_pcapng_write(w, t0 + 999999, 7, "uplink0", false, NULL, f,
						 (uint32_t)n, (uint32_t)n),
				 0);
	}
	assert_int_equal(zt_pcapng_flush(w), 0);
	assert_int_equal(tshark(path, "-e frame.number", out, sizeof(out)), 0);
	assert_true(strlen(out) > 3 && !strcmp(out + strlen(out) - 3, "53\n"));
	assert_int_equal(zt_pcapng_close(w), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(
		tshark(path,
		       "-e frame.number -e ip.src -e ip.dst -e tcp.srcport -e tcp.dstport "
		       "-e frame.len -e frame.cap_len -e frame.interface_name -e frame.comment "
		       "-e frame.time_epoch",
		       out, sizeof(out)),
		0);
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned int no, sp, dp, len, cap;
		char src[32], dst[32], ifn[32], rest[256];
		size_t want;

		assert_int_equal(sscanf(line, "%u|%31[^|]|%31[^|]|%u|%u|%u|%u|%31[^|]|%255[^\n]",
					&no, src, dst, &sp, &dp, &len, &cap, ifn, rest),
				 9);
		rows++;
		if (no > 50) {
			/* Written after the first flush, outbound, no comment. */
			assert_true(sp == 1 && dp == 2 && len == 54);
			assert_string_equal(ifn, "uplink0");
			continue;
		}
		want = 14 + 40 + (no - 1) * 10;
		assert_string_equal(src, "198.18.0.1");
		assert_string_equal(dst, "198.18.1.5");
		assert_int_equal(sp, 40000 + no - 1);
		assert_int_equal(dp, no);
		assert_int_equal(len, want);
		assert_int_equal(cap, want > 96 ? 96 : want);
		assert_string_equal(ifn, no <= 25 ? "uplink0" : "if9");
		/* comment (odd packets: the 2nd, 4th ...) then the time */
		if ((no - 1) % 2)
			assert_non_null(strstr(rest, "verdict=drop reason=blocklist|"));
		assert_non_null(strstr(rest, "1764763200.123"));
	}
	assert_int_equal(rows, 53);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_tshark_reads_it, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
