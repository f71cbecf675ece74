// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests: forensic captures. Frames are routed by their addresses to
 * the incident watching them (both directions, VLAN-tagged too), others
 * are left alone; a flood is thinned past the rate; files rotate at
 * file_bytes and stay within max_bytes and max_files, oldest removed
 * first; every file event is reported for the index; XDP drop events
 * become rebuilt headers with a comment. tshark reads the files.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "respond/forensics.h"

#define SEC 1000000000ULL

static char dir[64];

struct events {
	int open, closed, removed;
	char last_removed[512];
};

static void on_event(void *ctx, const char *kind, const char *subject, const char *detail)
{
	struct events *e = ctx;

	assert_string_equal(kind, "forensics.capture");
	if (strstr(detail, "\"state\":\"open\""))
		e->open++;
	else if (strstr(detail, "\"state\":\"closed\""))
		e->closed++;
	else if (strstr(detail, "\"state\":\"removed\"")) {
		e->removed++;
		snprintf(e->last_removed, sizeof(e->last_removed), "%s", subject);
	}
}

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/zt-fx.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Ethernet (+ a VLAN tag) + IPv4 + UDP from src to dst with n payload bytes. */
static size_t frame(uint8_t *f, const char *src, const char *dst, bool vlan, size_t n)
{
	size_t o = 12;
	uint16_t tot = (uint16_t)(28 + n);

	memset(f, 0, 14 + 4 + tot);
	if (vlan) {
		f[o++] = 0x81;
		f[o++] = 0x00;
		f[o++] = 0x00;
		f[o++] = 0x07;
	}
	f[o++] = 0x08;
	f[o++] = 0x00;
	f[o] = 0x45;
	f[o + 2] = (uint8_t)(tot >> 8);
	f[o + 3] = (uint8_t)tot;
	f[o + 8] = 64;
	f[o + 9] = 17;
	inet_pton(AF_INET, src, f + o + 12);
	inet_pton(AF_INET, dst, f + o + 16);
	f[o + 20] = 0x30;
	f[o + 22] = 0x00;
	f[o + 23] = 53;
	f[o + 24] = (uint8_t)((8 + n) >> 8);
	f[o + 25] = (uint8_t)(8 + n);
	return o + tot;
}

static int count_files(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	while (d && (e = readdir(d)))
		n += strstr(e->d_name, ".pcapng.gz") != NULL;
	if (d)
		closedir(d);
	return n;
}

static uint64_t dir_bytes(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	uint64_t n = 0;

	while (d && (e = readdir(d))) {
		char p[600];
		struct stat st;

		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		if (strstr(e->d_name, ".pcapng.gz") && stat(p, &st) == 0)
			n += (uint64_t)st.st_size;
	}
	if (d)
		closedir(d);
	return n;
}

/* tshark's packet count of a file, -1 when it cannot read it. */
static int tshark_count(const char *path, const char *filter)
{
	char cmd[1024], out[64] = "";
	FILE *p;
	int rc;

	snprintf(cmd, sizeof(cmd), "tshark -n -r '%s' %s%s%s 2>/dev/null | wc -l", path,
		 filter ? "-Y '" : "", filter ? filter : "", filter ? "'" : "");
	p = popen(cmd, "r");
	if (!p)
		return -1;
	if (!fgets(out, sizeof(out), p))
		out[0] = '\0';
	rc = pclose(p);
	return rc == 0 ? atoi(out) : -1;
}

static void test_routing_and_tshark(void **state)
{
	struct zt_forensics_cfg c;
	struct zt_forensics *f;
	struct events ev = { 0 };
	uint8_t id[16] = { 0x01, 0x91, 0xe7, 0xa4, 1 }, fr[2048], a[16] = { 0 };
	char path[600], cmd[800];
	struct zt_forensics_stats st;

	zt_forensics_cfg_defaults(&c);
	snprintf(c.dir, sizeof(c.dir), "%s/caps", dir);
	c.rate = 100;
	assert_int_equal(zt_forensics_new(&c, on_event, NULL, &ev, &f, NULL, 0), 0);
	inet_pton(AF_INET, "203.0.113.9", a);
	assert_false(zt_forensics_watched(f, 4, a));
	assert_int_equal(zt_forensics_watch(f, id, 4, a, path, sizeof(path)), 0);
	assert_true(zt_forensics_watched(f, 4, a));
	assert_non_null(strstr(path, "/caps/0191e7a4-0100-"));
	assert_non_null(strstr(path, "-1.pcapng.gz"));
	assert_int_equal(ev.open, 1);
	/* From it, to it (VLAN-tagged), and someone else's. */
	for (int k = 0; k < 10; k++) {
		size_t n = frame(fr, "203.0.113.9", "198.18.2.40", false, 32);

		assert_int_equal(zt_forensics_packet(f, 1764763200ULL * SEC + (uint64_t)k * 1000, 3,
						     ZT_FX_DROP, "blocklist", fr, (uint32_t)n,
						     (uint32_t)n),
				 1);
		n = frame(fr, "198.18.2.40", "203.0.113.9", true, 16);
		assert_int_equal(
			zt_forensics_packet(f, 1764763200ULL * SEC + (uint64_t)k * 1000 + 1, 3,
					    ZT_FX_PASS, NULL, fr, (uint32_t)n, (uint32_t)n),
			1);
		n = frame(fr, "198.18.0.3", "198.18.2.40", false, 16);
		assert_int_equal(zt_forensics_packet(f, 1764763200ULL * SEC, 3, ZT_FX_PASS, NULL,
						     fr, (uint32_t)n, (uint32_t)n),
				 0);
	}
	/* A sampled XDP drop: rebuilt headers. */
	{
		struct zt_ev_xdp_drop x = { .ifindex = 3,
					    .family = 4,
					    .proto = 6,
					    .sport = 40000,
					    .dport = 5432,
					    .pkt_len = 74,
					    .represents = 17 };

		memcpy(x.saddr, a, 4);
		inet_pton(AF_INET, "198.18.2.30", x.daddr);
		assert_int_equal(zt_forensics_xdp_drop(f, &x, 1764763201ULL * SEC, "blocklist"), 1);
		/* ... one of a frame whose VLAN tag the kernel held beside it (tc_guard). */
		x.proto = 1;
		x.sport = 8; /* an echo request: type and code in the ports */
		x.dport = 0;
		x.pkt_len = 64;
		x.vlan_proto = htons(0x8100);
		x.vlan_tci = 0x2009;
		assert_int_equal(zt_forensics_xdp_drop(f, &x, 1764763201ULL * SEC, "blocklist"), 1);
	}
	zt_forensics_tick(f, 5 * SEC); /* flush: readable while open */
	assert_int_equal(tshark_count(path, "vlan.id == 9 && vlan.priority == 1 && ip.src == "
					    "203.0.113.9 && icmp.type == 8 && frame.len == 64"),
			 1);
	assert_int_equal(tshark_count(path, NULL), 22);
	assert_int_equal(tshark_count(path, "ip.src == 203.0.113.9 && udp"), 10);
	assert_int_equal(tshark_count(path, "ip.dst == 203.0.113.9 && vlan.id == 7"), 10);
	assert_int_equal(tshark_count(path, "frame.comment contains \"verdict=drop\""), 12);
	assert_int_equal(tshark_count(path, "tcp.dstport == 5432 && frame.len == 74 && "
					    "frame.comment contains \"stands for 17 drops\""),
			 1);
	/*
	 * The next tick comes a little early (ticks and flushes are both about
	 * a second apart): it flushes all the same, so a packet is readable
	 * within a tick, not two.
	 */
	{
		size_t n = frame(fr, "203.0.113.9", "198.18.2.40", false, 32);

		assert_int_equal(zt_forensics_packet(f, 1764763202ULL * SEC, 3, ZT_FX_DROP,
						     "blocklist", fr, (uint32_t)n, (uint32_t)n),
				 1);
	}
	zt_forensics_tick(f, 5 * SEC + 900000000ULL);
	assert_int_equal(tshark_count(path, NULL), 23);
	/* Stop: the file is closed and complete. */
	zt_forensics_unwatch(f, id);
	assert_false(zt_forensics_watched(f, 4, a));
	assert_int_equal(ev.closed, 1);
	snprintf(cmd, sizeof(cmd), "gzip -t '%s'", path);
	assert_int_equal(system(cmd), 0);
	zt_forensics_get_stats(f, &st);
	assert_int_equal(st.packets, 23);
	assert_int_equal(st.synthesized, 2);
	assert_int_equal(st.files, 1);
	zt_forensics_free(f);
}

/* A flood is thinned: rate a second in full, then ever fewer. */
static void test_sampling(void **state)
{
	struct zt_forensics_cfg c;
	struct zt_forensics *f;
	uint8_t id[16] = { 2 }, fr[256], a[16] = { 0 };
	struct zt_forensics_stats st;
	int kept = 0;

	zt_forensics_cfg_defaults(&c);
	snprintf(c.dir, sizeof(c.dir), "%s/s", dir);
	c.rate = 1000;
	assert_int_equal(zt_forensics_new(&c, NULL, NULL, NULL, &f, NULL, 0), 0);
	inet_pton(AF_INET, "203.0.113.10", a);
	assert_int_equal(zt_forensics_watch(f, id, 4, a, NULL, 0), 0);
	/* 100k packets a second for 3 seconds. */
	for (int k = 0; k < 300000; k++) {
		size_t n = frame(fr, "203.0.113.10", "198.18.2.40", false, 0);

		kept += zt_forensics_packet(f, 100 * SEC + (uint64_t)k * 10000, 1, ZT_FX_DROP, NULL,
					    fr, (uint32_t)n, (uint32_t)n);
	}
	zt_forensics_get_stats(f, &st);
	assert_int_equal((int)st.packets, kept);
	print_message("  kept %d of 300000\n", kept);
	/* About rate x log2(100k / rate) = 6.6k a second: 3 s of it, not 300k. */
	assert_true(kept >= 3 * 1000 && kept <= 3 * 1000 * 9);
	assert_int_equal(st.sampled_out, 300000 - (uint64_t)kept);
	zt_forensics_free(f);
}

/* Rotation at file_bytes; the bounds hold, oldest first; files left from before count. */
static void test_bounds(void **state)
{
	struct zt_forensics_cfg c;
	struct zt_forensics *f;
	struct events ev = { 0 };
	uint8_t fr[2048], a[16] = { 0 };
	char sub[300], old[400], first_path[600] = "";
	FILE *o;

	snprintf(sub, sizeof(sub), "%s/b", dir);
	mkdir(sub, 0700);
	/* A file from an earlier run: 200 KiB, the oldest. */
	snprintf(old, sizeof(old), "%s/old-1.pcapng.gz", sub);
	o = fopen(old, "w");
	assert_non_null(o);
	for (int k = 0; k < 200 * 1024; k++)
		fputc(k & 0xff, o);
	fclose(o);
	zt_forensics_cfg_defaults(&c);
	snprintf(c.dir, sizeof(c.dir), "%s", sub);
	c.max_bytes = 1 << 20;
	c.file_bytes = 128 << 10;
	c.max_files = 6;
	c.rate = 1000000;
	assert_int_equal(zt_forensics_new(&c, on_event, NULL, &ev, &f, NULL, 0), 0);
	for (int inc = 0; inc < 3; inc++) {
		uint8_t id[16] = { 0x10, (uint8_t)inc };
		char ip[32];

		snprintf(ip, sizeof(ip), "203.0.113.%d", 20 + inc);
		inet_pton(AF_INET, ip, a);
		assert_int_equal(zt_forensics_watch(f, id, 4, a, inc ? NULL : first_path,
						    sizeof(first_path)),
				 0);
	}
	/* Incompressible-ish payloads so the files grow. */
	for (int round = 0; round < 40; round++) {
		for (int k = 0; k < 300; k++) {
			char ip[32];
			size_t n;

			snprintf(ip, sizeof(ip), "203.0.113.%d", 20 + k % 3);
			n = frame(fr, ip, "198.18.2.40", false, 200);
			for (int b = 0; b < 200; b++)
				fr[42 + b] = (uint8_t)(rand() & 0xff);
			zt_forensics_packet(f, (uint64_t)(round * 300 + k) * 1000000, 1, ZT_FX_PASS,
					    NULL, fr, (uint32_t)n, (uint32_t)n);
		}
		zt_forensics_tick(f, (uint64_t)(round + 1) * 2 * SEC);
		assert_true(dir_bytes() <= c.max_bytes + 3 * c.file_bytes / 2);
		assert_true(count_files() <= (int)c.max_files);
	}
	/* The old file went first; rotation made parts; some were removed for room. */
	assert_int_not_equal(access(old, F_OK), 0);
	assert_true(ev.open > 3);
	assert_true(ev.removed >= 2);
	assert_true(access(first_path, F_OK) != 0); /* part 1 of the first incident: gone */
	zt_forensics_free(f);
	/* Every remaining file is whole. */
	{
		char cmd[600];

		snprintf(cmd, sizeof(cmd), "cd '%s' && gzip -t *.pcapng.gz", sub);
		assert_int_equal(system(cmd), 0);
	}
}

/* The packets' writer holding the lock (here: a file event reported under it, stalled). */
static pthread_mutex_t stall_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t stall_cv = PTHREAD_COND_INITIALIZER;
static int stall_state; /* 0 off, 1 stall the next open, 2 stalled, 3 released */

static void stall_event(void *ctx, const char *kind, const char *subject, const char *detail)
{
	struct timespec until;

	pthread_mutex_lock(&stall_mu);
	if (stall_state == 1 && strstr(detail, "\"state\":\"open\"")) {
		stall_state = 2;
		pthread_cond_broadcast(&stall_cv);
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 3;
		while (stall_state == 2)
			if (pthread_cond_timedwait(&stall_cv, &stall_mu, &until))
				break;
	}
	pthread_mutex_unlock(&stall_mu);
}

struct watcher {
	struct zt_forensics *f;
	uint8_t id[16], a[16];
};

static void *watch_main(void *arg)
{
	struct watcher *w = arg;

	zt_forensics_watch(w->f, w->id, 4, w->a, NULL, 0);
	return NULL;
}

static uint64_t mono(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * SEC + (uint64_t)t.tv_nsec;
}

static void test_tick_does_not_wait_for_the_writer(void **state)
{
	struct zt_forensics_cfg c;
	struct watcher w = { .id = { 0x01, 0x91, 0xe7, 0xa4, 2 } };
	pthread_t t;
	uint64_t t0;

	zt_forensics_cfg_defaults(&c);
	snprintf(c.dir, sizeof(c.dir), "%s/caps", dir);
	assert_int_equal(zt_forensics_new(&c, stall_event, NULL, NULL, &w.f, NULL, 0), 0);
	inet_pton(AF_INET, "203.0.113.7", w.a);
	stall_state = 1;
	assert_int_equal(pthread_create(&t, NULL, watch_main, &w), 0);
	pthread_mutex_lock(&stall_mu);
	while (stall_state != 2)
		pthread_cond_wait(&stall_cv, &stall_mu);
	pthread_mutex_unlock(&stall_mu);
	/* The writer has the lock: the loop's ticks pass it by (4 in a row)... */
	t0 = mono();
	for (int k = 1; k < 5; k++)
		zt_forensics_tick(w.f, (uint64_t)k * SEC);
	assert_true(mono() - t0 < SEC / 2);
	/* ... and the next one waits for it, so the flushes and bounds do happen. */
	pthread_mutex_lock(&stall_mu);
	stall_state = 3;
	pthread_cond_broadcast(&stall_cv);
	pthread_mutex_unlock(&stall_mu);
	zt_forensics_tick(w.f, 5 * SEC);
	pthread_join(t, NULL);
	assert_true(zt_forensics_watched(w.f, 4, w.a));
	zt_forensics_free(w.f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_routing_and_tshark, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sampling, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bounds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tick_does_not_wait_for_the_writer, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
