// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests: the feature schema and its hash, service classes, features
 * of flow records (values, no NaN, blind to addresses and raw ports), the
 * handshake estimate, per-source windows (scan, brute force, rollover, a
 * full table) and the CSV feature log.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/sha.h>

#include "detect/features.h"
#include "detect/model.h"

/*
 * The schema's hash as committed models carry it. A change to the feature
 * table changes it: update it here, and retrain (`make train`) so that the
 * model in tools/train/ matches the agent again.
 */
#define SCHEMA_HASH "b6a025533c2fe25f8f8fc5f3a86281c45f4913a6fed10e4fe87596c5cabb7909"

static void test_schema(void **state)
{
	char buf[8192] = "";
	uint8_t md[32];
	char hex[65];
	size_t len = 0;
	char *json = NULL;
	size_t jlen = 0;
	FILE *f;

	for (int i = 0; i < ZT_F_COUNT; i++) {
		const char *n = zt_feat_defs[i].name;

		assert_non_null(n);
		assert_true(zt_feat_defs[i].version >= 1);
		assert_non_null(zt_feat_defs[i].doc);
		for (const char *p = n; *p; p++)
			assert_true((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
				    *p == '_');
		for (int j = 0; j < i; j++)
			assert_string_not_equal(n, zt_feat_defs[j].name);
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s:%u\n", n,
					zt_feat_defs[i].version);
	}
	SHA256((const unsigned char *)buf, len, md);
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	assert_string_equal(zt_feat_schema_hash_hex(), hex);
	assert_memory_equal(zt_feat_schema_hash(), md, 32);
	assert_string_equal(zt_feat_schema_hash_hex(), SCHEMA_HASH);

	f = open_memstream(&json, &jlen);
	assert_int_equal(zt_feat_schema_json(f), 0);
	fclose(f);
	assert_non_null(strstr(json, SCHEMA_HASH));
	for (int i = 0; i < ZT_F_COUNT; i++) {
		char want[128];

		snprintf(want, sizeof(want), "\"index\": %d, \"name\": \"%s\"", i,
			 zt_feat_defs[i].name);
		assert_non_null(strstr(json, want));
	}
	assert_non_null(strstr(json, "\"exfiltration\""));
	free(json);
}

static void test_service_classes(void **state)
{
	static const struct {
		uint8_t proto;
		uint16_t port;
		bool has;
		enum zt_svc_class want;
	} cases[] = {
		{ IPPROTO_TCP, 80, true, ZT_SVC_WEB },
		{ IPPROTO_TCP, 443, true, ZT_SVC_WEB },
		{ IPPROTO_TCP, 8080, true, ZT_SVC_WEB },
		{ IPPROTO_UDP, 53, true, ZT_SVC_DNS },
		{ IPPROTO_TCP, 53, true, ZT_SVC_DNS },
		{ IPPROTO_TCP, 22, true, ZT_SVC_REMOTE },
		{ IPPROTO_TCP, 3389, true, ZT_SVC_REMOTE },
		{ IPPROTO_TCP, 5432, true, ZT_SVC_DATABASE },
		{ IPPROTO_TCP, 6379, true, ZT_SVC_DATABASE },
		{ IPPROTO_TCP, 25, true, ZT_SVC_MAIL },
		{ IPPROTO_TCP, 110, true, ZT_SVC_MAIL },
		{ IPPROTO_TCP, 445, true, ZT_SVC_FILE },
		{ IPPROTO_TCP, 7, true, ZT_SVC_WELL_KNOWN },
		{ IPPROTO_TCP, 1023, true, ZT_SVC_WELL_KNOWN },
		{ IPPROTO_TCP, 5201, true, ZT_SVC_REGISTERED },
		{ IPPROTO_UDP, 49151, true, ZT_SVC_REGISTERED },
		{ IPPROTO_UDP, 49152, true, ZT_SVC_EPHEMERAL },
		{ IPPROTO_TCP, 65535, true, ZT_SVC_EPHEMERAL },
		{ IPPROTO_TCP, 0, true, ZT_SVC_NONE },
		{ IPPROTO_TCP, 80, false, ZT_SVC_NONE },
		{ IPPROTO_ICMP, 80, true, ZT_SVC_NONE },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum zt_svc_class c =
			zt_feat_service_class(cases[i].proto, cases[i].port, cases[i].has);

		if (c != cases[i].want)
			fail_msg("proto %u port %u: %s, expected %s", cases[i].proto, cases[i].port,
				 zt_feat_service_name(c), zt_feat_service_name(cases[i].want));
	}
	/* Every port maps to exactly one class; the lookup agrees with a linear scan. */
	for (unsigned int p = 1; p < 65536; p++) {
		enum zt_svc_class c = zt_feat_service_class(IPPROTO_TCP, (uint16_t)p, true);

		assert_true(c > ZT_SVC_NONE && c < ZT_SVC_MAX);
	}
	assert_string_equal(zt_feat_service_name(ZT_SVC_DATABASE), "database");
}

static void rec(struct zt_flow_record *r, const char *src, const char *dst, uint8_t proto,
		uint16_t dport)
{
	zt_flowrec_init(r);
	r->family = AF_INET;
	inet_pton(AF_INET, src, r->source_ip);
	inet_pton(AF_INET, dst, r->dest_ip);
	r->protocol = proto;
	r->source_port = 40000;
	r->dest_port = dport;
	r->present |= ZT_FR_HAS_SPORT | ZT_FR_HAS_DPORT;
	snprintf(r->direction, sizeof(r->direction), "ingress");
	r->start_time_us = 1700000000000000LL;
	r->end_time_us = r->start_time_us;
}

static void test_values(void **state)
{
	struct zt_flow_record r;
	float x[ZT_F_COUNT];

	rec(&r, "198.18.0.10", "198.18.1.10", IPPROTO_TCP, 443);
	r.packets_sent = 10;
	r.bytes_sent = 1000;
	r.packets_received = 8;
	r.bytes_received = 8000;
	r.duration_ms = 2000;
	r.tcp_flags = ZT_TCP_SYN | ZT_TCP_ACK | ZT_TCP_PSH | ZT_TCP_FIN;
	zt_features_compute(&r, NULL, NULL, x);
	assert_float_equal(x[ZT_F_PROTO_TCP], 1, 0);
	assert_float_equal(x[ZT_F_PROTO_UDP], 0, 0);
	assert_float_equal(x[ZT_F_SVC_WEB], 1, 0);
	assert_float_equal(x[ZT_F_SVC_DNS] + x[ZT_F_SVC_REMOTE] + x[ZT_F_SVC_EPHEMERAL], 0, 0);
	assert_float_equal(x[ZT_F_DIR_EGRESS], 0, 0);
	assert_float_equal(x[ZT_F_LOG_PKTS_OUT], log1p(10), 1e-6);
	assert_float_equal(x[ZT_F_LOG_BYTES_IN], log1p(8000), 1e-6);
	assert_float_equal(x[ZT_F_LOG_DURATION_MS], log1p(2000), 1e-6);
	assert_float_equal(x[ZT_F_BYTES_OUT_RATIO], 1000.0 / 9000.0, 1e-6);
	assert_float_equal(x[ZT_F_MEAN_SIZE_OUT], 100, 1e-6);
	assert_float_equal(x[ZT_F_MEAN_SIZE_IN], 1000, 1e-6);
	assert_float_equal(x[ZT_F_LOG_PPS], log1p(9), 1e-6);
	assert_float_equal(x[ZT_F_LOG_BPS], log1p(4500), 1e-5);
	assert_float_equal(x[ZT_F_REPLY_SEEN], 1, 0);
	assert_float_equal(x[ZT_F_TCP_SYN] + x[ZT_F_TCP_ACK] + x[ZT_F_TCP_PSH] + x[ZT_F_TCP_FIN], 4,
			   0);
	assert_float_equal(x[ZT_F_TCP_RST] + x[ZT_F_TCP_URG], 0, 0);
	assert_float_equal(x[ZT_F_TCP_HANDSHAKE], 1, 0);
	assert_float_equal(x[ZT_F_HAS_FLOWSTATS], 0, 0);
	assert_float_equal(x[ZT_F_HAS_SRC], 0, 0);
	for (int i = ZT_F_SIZE_MIN_OUT; i <= ZT_F_SRC_LOG_BYTES_OUT; i++)
		assert_float_equal(x[i], 0, 0); /* absent: defined zeros */

	/* UDP egress: no TCP features even with stray flag bits. */
	rec(&r, "198.18.1.10", "198.18.0.53", IPPROTO_UDP, 53);
	snprintf(r.direction, sizeof(r.direction), "egress");
	r.packets_sent = 1;
	r.bytes_sent = 60;
	r.tcp_flags = ZT_TCP_SYN;
	zt_features_compute(&r, NULL, NULL, x);
	assert_float_equal(x[ZT_F_PROTO_UDP], 1, 0);
	assert_float_equal(x[ZT_F_SVC_DNS], 1, 0);
	assert_float_equal(x[ZT_F_DIR_EGRESS], 1, 0);
	assert_float_equal(x[ZT_F_TCP_SYN] + x[ZT_F_TCP_HANDSHAKE], 0, 0);
	assert_float_equal(x[ZT_F_REPLY_SEEN], 0, 0);
	assert_float_equal(x[ZT_F_BYTES_OUT_RATIO], 1, 0);
	/* Duration 0 counts as 1 ms: 1 packet in 1 ms is 1000 packets/s. */
	assert_float_equal(x[ZT_F_LOG_PPS], log1p(1000), 1e-5);
}

/* Features see what traffic does, not where it comes from or which port number it hit. */
static void test_blind_to_lab_proxies(void **state)
{
	struct zt_flow_record a, b;
	float xa[ZT_F_COUNT], xb[ZT_F_COUNT];

	rec(&a, "198.18.0.10", "198.18.1.10", IPPROTO_TCP, 80);
	a.packets_sent = 5;
	a.bytes_sent = 400;
	a.packets_received = 4;
	a.bytes_received = 3000;
	a.duration_ms = 12;
	a.tcp_flags = ZT_TCP_SYN | ZT_TCP_ACK | ZT_TCP_FIN;
	b = a;
	inet_pton(AF_INET, "203.0.113.77", b.source_ip);
	inet_pton(AF_INET, "10.96.4.2", b.dest_ip);
	b.source_port = 61234;
	b.dest_port = 8080; /* another web port */
	snprintf(b.node, sizeof(b.node), "other-node");
	snprintf(b.source_workload, sizeof(b.source_workload), "world");
	snprintf(b.interface, sizeof(b.interface), "veth9");
	zt_features_compute(&a, NULL, NULL, xa);
	zt_features_compute(&b, NULL, NULL, xb);
	assert_memory_equal(xa, xb, sizeof(xa));
}

static void test_no_nan(void **state)
{
	struct zt_flow_record r;
	struct zt_feat_flowstats fs;
	struct zt_feat_src src = { .flows = 1, .dst_ports = NAN, .dst_hosts = INFINITY };
	float x[ZT_F_COUNT];

	rec(&r, "198.18.0.1", "198.18.0.2", IPPROTO_TCP, 22);
	r.packets_sent = INT64_MAX;
	r.bytes_sent = INT64_MAX;
	r.packets_received = -5;
	r.bytes_received = -7;
	r.duration_ms = -1;
	memset(&fs, 0, sizeof(fs));
	fs.size_mean[0] = NAN;
	fs.size_std[1] = -INFINITY;
	fs.iat_max_us[0] = INFINITY;
	fs.iat_min_us[1] = NAN;
	zt_features_compute(&r, &fs, &src, x);
	for (int i = 0; i < ZT_F_COUNT; i++)
		if (!isfinite(x[i]))
			fail_msg("feature %s is %f", zt_feat_defs[i].name, (double)x[i]);
	assert_float_equal(x[ZT_F_HAS_FLOWSTATS], 1, 0);
	assert_float_equal(x[ZT_F_HAS_SRC], 1, 0);
	assert_float_equal(x[ZT_F_LOG_PKTS_IN], 0, 0);
}

static void test_flowstats(void **state)
{
	struct zt_flow_record r;
	struct zt_feat_flowstats fs = { 0 };
	float x[ZT_F_COUNT], mean, sd;

	zt_feat_mean_std(0, 0, 0, &mean, &sd);
	assert_true(mean == 0 && sd == 0);
	zt_feat_mean_std(1, 60, 3600, &mean, &sd);
	assert_true(mean == 60 && sd == 0);
	zt_feat_mean_std(3, 3 * 1500.1, 3 * 1500.1 * 1500.1, &mean, &sd); /* constant */
	assert_float_equal(mean, 1500.1, 1e-3);
	assert_false(isnan(sd));
	zt_feat_mean_std(4, 2 + 4 + 4 + 6, 4 + 16 + 16 + 36, &mean, &sd);
	assert_float_equal(mean, 4, 1e-6);
	assert_float_equal(sd, sqrt(2), 1e-6);

	rec(&r, "198.18.0.1", "198.18.0.2", IPPROTO_TCP, 22);
	r.packets_sent = 2;
	r.packets_received = 1;
	r.tcp_flags = ZT_TCP_SYN | ZT_TCP_ACK | ZT_TCP_RST;
	fs.handshake = true; /* conntrack's word beats the estimate */
	fs.size_min[0] = 40;
	fs.size_max[1] = 1500;
	fs.iat_mean_us[0] = 999;
	fs.syn[0] = 3;
	fs.rst[1] = 1;
	zt_features_compute(&r, &fs, NULL, x);
	assert_float_equal(x[ZT_F_TCP_HANDSHAKE], 1, 0);
	assert_float_equal(x[ZT_F_SIZE_MIN_OUT], 40, 0);
	assert_float_equal(x[ZT_F_SIZE_MAX_IN], 1500, 0);
	assert_float_equal(x[ZT_F_LOG_IAT_MEAN_OUT], log1p(999), 1e-6);
	assert_float_equal(x[ZT_F_LOG_SYN_OUT], log1p(3), 1e-6);
	assert_float_equal(x[ZT_F_LOG_RST_IN], log1p(1), 1e-6);
	assert_float_equal(x[ZT_F_LOG_SYN_IN], 0, 0);
}

static void test_handshake_estimate(void **state)
{
	static const struct {
		const char *what;
		uint8_t proto, flags;
		int64_t out, in;
		bool want;
	} cases[] = {
		{ "complete exchange", IPPROTO_TCP, ZT_TCP_SYN | ZT_TCP_ACK | ZT_TCP_FIN, 6, 5, 1 },
		{ "connect, then RST", IPPROTO_TCP, ZT_TCP_SYN | ZT_TCP_ACK | ZT_TCP_RST, 3, 1, 1 },
		{ "half-open SYN/SYN-ACK/RST", IPPROTO_TCP, ZT_TCP_SYN | ZT_TCP_ACK | ZT_TCP_RST, 2,
		  1, 0 },
		{ "closed port SYN/RST", IPPROTO_TCP, ZT_TCP_SYN | ZT_TCP_ACK | ZT_TCP_RST, 1, 1,
		  0 },
		{ "unanswered SYNs", IPPROTO_TCP, ZT_TCP_SYN, 3, 0, 0 },
		{ "SYN, SYN-ACK, ACK", IPPROTO_TCP, ZT_TCP_SYN | ZT_TCP_ACK, 2, 1, 1 },
		{ "interim record of an open flow", IPPROTO_TCP, ZT_TCP_ACK | ZT_TCP_PSH, 100, 90,
		  1 },
		{ "interim, one way only", IPPROTO_TCP, ZT_TCP_ACK, 100, 0, 0 },
		{ "UDP", IPPROTO_UDP, 0, 5, 5, 0 },
	};
	struct zt_flow_record r;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		rec(&r, "198.18.0.1", "198.18.0.2", cases[i].proto, 80);
		r.tcp_flags = cases[i].flags;
		r.packets_sent = cases[i].out;
		r.packets_received = cases[i].in;
		if (zt_feat_handshake(&r, NULL) != cases[i].want)
			fail_msg("%s: expected %d", cases[i].what, cases[i].want);
	}
}

/* One source probing 500 ports of one host, each SYN answered by RST; and a quiet neighbour. */
static void test_window_scan(void **state)
{
	struct zt_feat_window *w;
	struct zt_flow_record r;
	struct zt_feat_src s;
	float x[ZT_F_COUNT];

	assert_int_equal(zt_feat_window_new(0, 0, &w), 0);
	for (int p = 1; p <= 500; p++) {
		rec(&r, "198.18.0.66", "198.18.1.10", IPPROTO_TCP, (uint16_t)p);
		r.end_time_us += p * 1000;
		r.packets_sent = 1;
		r.packets_received = 1;
		r.tcp_flags = ZT_TCP_SYN | ZT_TCP_RST | ZT_TCP_ACK;
		zt_feat_window_add(w, &r, NULL, &s);
	}
	printf("# 500 ports: estimate %.0f, hosts %.2f\n", (double)s.dst_ports,
	       (double)s.dst_hosts);
	assert_int_equal(s.flows, 500);
	assert_int_equal(s.tcp_flows, 500);
	assert_int_equal(s.syn_nohs, 500);
	assert_int_equal(s.noreply, 0);
	assert_true(s.dst_ports > 400 && s.dst_ports < 600);
	assert_true(s.dst_hosts > 0.9 && s.dst_hosts < 1.1);
	zt_features_compute(&r, NULL, &s, x);
	assert_float_equal(x[ZT_F_SRC_SYN_NOHS_RATIO], 1, 0);
	assert_float_equal(x[ZT_F_SRC_LOG_FLOWS], log1p(500), 1e-5);

	/* Another source at the same time: its own window. */
	rec(&r, "198.18.0.67", "198.18.1.10", IPPROTO_TCP, 443);
	r.end_time_us += 400000;
	r.packets_sent = 8;
	r.packets_received = 7;
	r.tcp_flags = ZT_TCP_SYN | ZT_TCP_ACK | ZT_TCP_FIN;
	zt_feat_window_add(w, &r, NULL, &s);
	assert_int_equal(s.flows, 1);
	assert_int_equal(s.syn_nohs, 0);
	assert_true(s.dst_ports > 0.9 && s.dst_ports < 1.1);
	zt_feat_window_free(w);
}

/* Many short sessions to one service; then windows roll over. */
static void test_window_same_service_and_rollover(void **state)
{
	struct zt_feat_window *w;
	struct zt_flow_record r;
	struct zt_feat_src s;
	int64_t t0;

	assert_int_equal(zt_feat_window_new(64, 5000000, &w), 0);
	for (int i = 0; i < 100; i++) {
		rec(&r, "198.18.0.70", "198.18.1.20", IPPROTO_TCP, 8080);
		r.end_time_us += i * 10000;
		r.packets_sent = 5;
		r.packets_received = 4;
		r.bytes_sent = 300;
		r.tcp_flags = ZT_TCP_SYN | ZT_TCP_ACK | ZT_TCP_FIN;
		zt_feat_window_add(w, &r, NULL, &s);
	}
	assert_true(s.same_service >= 100); /* a shared slot can only add */
	assert_int_equal(s.flows, 100);
	assert_int_equal(s.bytes_out, 30000);
	t0 = r.start_time_us;
	/* 6 s later: the first window is the previous one, still counted. */
	r.end_time_us = t0 + 6000000;
	zt_feat_window_add(w, &r, NULL, &s);
	assert_int_equal(s.flows, 101);
	/* 11 s after the start: the previous window is now the 6 s one; the first has gone. */
	r.end_time_us = t0 + 11000000;
	zt_feat_window_add(w, &r, NULL, &s);
	assert_int_equal(s.flows, 2);
	/* Long quiet: everything has gone. */
	r.end_time_us = t0 + 60000000;
	zt_feat_window_add(w, &r, NULL, &s);
	assert_int_equal(s.flows, 1);
	/* A record from before the window counts in the current one, never negative. */
	r.end_time_us = t0;
	zt_feat_window_add(w, &r, NULL, &s);
	assert_int_equal(s.flows, 2);
	zt_feat_window_free(w);
}

static void test_window_full_table(void **state)
{
	struct zt_feat_window *w;
	struct zt_flow_record r;
	struct zt_feat_src s;
	char a[32];

	assert_int_equal(zt_feat_window_new(16, 0, &w), 0);
	for (int i = 0; i < 5000; i++) {
		snprintf(a, sizeof(a), "198.18.%d.%d", (i >> 8) & 255, i & 255);
		rec(&r, a, "198.18.1.1", IPPROTO_UDP, 53);
		r.end_time_us += i;
		zt_feat_window_add(w, &r, NULL, &s);
		assert_int_equal(s.flows, 1);
	}
	/* A recent source is still there. */
	zt_feat_window_add(w, &r, NULL, &s);
	assert_int_equal(s.flows, 2);
	zt_feat_window_free(w);
}

static void test_feature_log(void **state)
{
	char dir[] = "/tmp/zt-featlog.XXXXXX", p[128], hdr[4096], line[8192], e[512];
	struct zt_featlog *fl;
	struct zt_flow_record recs[2];
	float x[ZT_F_COUNT];
	struct zt_feat_src s = { 0 };
	struct zt_feat_window *w;
	FILE *f;
	int n, cols = 1, rows = 0;
	char *tok, *save;

	assert_non_null(mkdtemp(dir));
	snprintf(p, sizeof(p), "%s/features.csv", dir);
	rec(&recs[0], "198.18.0.10", "198.18.1.10", IPPROTO_TCP, 80);
	recs[0].packets_sent = 3;
	recs[0].bytes_sent = 180;
	recs[0].packets_received = 2;
	recs[0].bytes_received = 1234;
	recs[0].duration_ms = 5;
	recs[0].tcp_flags = ZT_TCP_SYN | ZT_TCP_ACK;
	zt_flowrec_init(&recs[1]);
	recs[1].kind = ZT_FLOW_KIND_XDP_DROP_AGG; /* not a flow: no row */
	assert_int_equal(zt_featlog_open(p, &fl, e, sizeof(e)), 0);
	assert_int_equal(zt_featlog_write(fl, recs, 2), 0);
	zt_featlog_close(fl);
	/* Reopened: appends, no second header. */
	assert_int_equal(zt_featlog_open(p, &fl, e, sizeof(e)), 0);
	assert_int_equal(zt_featlog_write(fl, recs, 1), 0);
	zt_featlog_close(fl);

	n = zt_featlog_header(hdr, sizeof(hdr));
	assert_true(n > 0);
	f = fopen(p, "r");
	assert_non_null(f);
	assert_non_null(fgets(line, sizeof(line), f));
	assert_int_equal(strncmp(line, hdr, (size_t)n), 0);
	for (char *c = hdr; *c; c++)
		cols += *c == ',';
	assert_int_equal(cols, 6 + ZT_F_COUNT);
	/* The first row's features are those of the record with a fresh window. */
	assert_int_equal(zt_feat_window_new(0, 0, &w), 0);
	zt_feat_window_add(w, &recs[0], NULL, &s);
	zt_feat_window_free(w);
	zt_features_compute(&recs[0], NULL, &s, x);
	while (fgets(line, sizeof(line), f)) {
		int col = 0;

		rows++;
		for (tok = strtok_r(line, ",\n", &save); tok; tok = strtok_r(NULL, ",\n", &save)) {
			if (col == 1)
				assert_string_equal(tok, "198.18.0.10");
			if (col == 4)
				assert_string_equal(tok, "80");
			if (col == 5)
				assert_string_equal(tok, "ingress");
			if (rows == 1 && col >= 6)
				assert_true(strtof(tok, NULL) == x[col - 6]); /* exact round trip */
			col++;
		}
		assert_int_equal(col, 6 + ZT_F_COUNT);
	}
	fclose(f);
	assert_int_equal(rows, 2);

	/* A file with other columns is refused, not appended to. */
	snprintf(p, sizeof(p), "%s/other.csv", dir);
	f = fopen(p, "w");
	fputs("time_us,src,dst,proto,dport,direction,proto_tcp\n", f);
	fclose(f);
	assert_int_equal(zt_featlog_open(p, &fl, e, sizeof(e)), -EEXIST);
	assert_non_null(strstr(e, "other columns"));
	unlink(p);
	snprintf(p, sizeof(p), "%s/features.csv", dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/no/such/dir.csv", dir);
	assert_int_equal(zt_featlog_open(p, &fl, e, sizeof(e)), -ENOENT);
	assert_non_null(strstr(e, p));
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_schema),
		cmocka_unit_test(test_service_classes),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_blind_to_lab_proxies),
		cmocka_unit_test(test_no_nan),
		cmocka_unit_test(test_flowstats),
		cmocka_unit_test(test_handshake_estimate),
		cmocka_unit_test(test_window_scan),
		cmocka_unit_test(test_window_same_service_and_rollover),
		cmocka_unit_test(test_window_full_table),
		cmocka_unit_test(test_feature_log),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
