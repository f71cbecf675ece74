// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests: the engine from decision to action with its hooks standing
 * in for the daemon (the map write is a recording function here; the
 * integration test writes the real XDP map). A decision blocks its
 * source once (the TTL, the note naming the detector, the audit event
 * for the blocks table), opens one incident with its capture, and grows
 * it; protected sources are refused and still recorded; kernel inputs
 * (probes, packets, captures) and policy violations reach their
 * detectors and aggregators.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <bpf/bpf.h>

#include "agent/api.h"
#include "agent/apiops.h"
#include "agent/cbor.h"
#include "agent/config.h"
#include "agent/loop.h"
#include "agent/util.h"
#include "respond/engine.h"

#define SEC 1000000000ULL

struct world {
	pthread_mutex_t mu; /* the hooks are called from more than one thread */
	int writes;
	struct zt_block_action last;
	int posts;
	char kinds[4096][24];
	char *details[4096];
	double lat[4096];
	int nlat;
	int never_calls; /* never_cidrs: calls, and what the last one had */
	bool never_protected, never_special;
	size_t never_n;
};

static void w_never(void *ctx, const struct zt_cidr *v, size_t n)
{
	struct world *w = ctx;
	char s[ZT_CIDR_STRLEN];

	pthread_mutex_lock(&w->mu);
	w->never_calls++;
	w->never_n = n;
	w->never_protected = w->never_special = false;
	for (size_t i = 0; i < n; i++) {
		zt_cidr_format(&v[i], s, sizeof(s));
		w->never_protected |= !strcmp(s, "198.18.7.0/24");
		w->never_special |= !strcmp(s, "127.0.0.0/8");
	}
	pthread_mutex_unlock(&w->mu);
}

static void w_post(void *ctx, const char *kind, const char *subject, const char *detail)
{
	struct world *w = ctx;

	pthread_mutex_lock(&w->mu);
	if (w->posts < 4096) {
		snprintf(w->kinds[w->posts], sizeof(w->kinds[0]), "%s", kind);
		w->details[w->posts] = strdup(detail);
	}
	w->posts++;
	pthread_mutex_unlock(&w->mu);
}

static int w_write(void *ctx, const struct zt_block_action *a, char *err, size_t errlen)
{
	struct world *w = ctx;

	pthread_mutex_lock(&w->mu);
	w->writes++;
	w->last = *a;
	pthread_mutex_unlock(&w->mu);
	return 0;
}

static void w_lat(void *ctx, double s)
{
	struct world *w = ctx;

	pthread_mutex_lock(&w->mu);
	if (w->nlat < 4096)
		w->lat[w->nlat++] = s;
	pthread_mutex_unlock(&w->mu);
}

static char dir[64];

static struct zt_engine *mk_engine_ct(struct world *w, uint32_t conntrack_max)
{
	struct zt_config *c = calloc(1, sizeof(*c));
	struct zt_engine_hooks h = {
		.ctx = w,
		.post = w_post,
		.write_block = w_write,
		.observe_latency = w_lat,
		.never_cidrs = w_never,
	};
	struct zt_engine *e;
	char err[256];

	zt_config_defaults(c);
	snprintf(c->forensics.dir, sizeof(c->forensics.dir), "%s/pcap", dir);
	c->response.block_ttl_ns = 10 * SEC;
	c->policy.conntrack_max = conntrack_max;
	pthread_mutex_init(&w->mu, NULL);
	zt_cidr_parse("198.18.7.0/24", &c->detection.protected_cidrs[0], NULL);
	c->detection.n_protected = 1;
	assert_int_equal(zt_engine_new(c, &h, &e, err, sizeof(err)), 0);
	assert_int_equal(zt_engine_start(e, err, sizeof(err)), 0);
	free(c);
	return e;
}

static struct zt_engine *mk_engine(struct world *w)
{
	return mk_engine_ct(w, 4096);
}

static int find_post(struct world *w, const char *kind, int from)
{
	for (int i = from; i < w->posts && i < 4096; i++)
		if (!strcmp(w->kinds[i], kind))
			return i;
	return -1;
}

static void world_free(struct world *w)
{
	for (int i = 0; i < w->posts && i < 4096; i++)
		free(w->details[i]);
}

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/zt-engine.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void mk(struct zt_decision *d, enum zt_threat t, const char *src)
{
	uint8_t a[16] = { 0 };

	inet_pton(AF_INET, src, a);
	zt_decision_init(d, t, ZT_ROLE_SOURCE, 4, a, 0);
	d->score = 0.97f;
	d->flows = 12;
	snprintf(d->subtype, sizeof(d->subtype), "short-sessions");
	snprintf(d->evidence, sizeof(d->evidence), "12 of 12 sessions ...");
}

static void test_decision_to_block(void **state)
{
	struct world *w = calloc(1, sizeof(*w));
	struct zt_engine *e = mk_engine(w);
	struct zt_decision d;
	struct zt_engine_stats st;
	int b, o;

	/* The start gave the never-block CIDRs to the kernel's scan brake. */
	assert_int_equal(w->never_calls, 1);
	assert_true(w->never_protected);
	assert_true(w->never_special);
	mk(&d, ZT_THREAT_BRUTEFORCE, "203.0.113.44");
	zt_engine_decide(e, &d);
	assert_int_equal(w->writes, 1);
	assert_int_equal(w->last.family, 4);
	assert_int_equal(w->last.ttl_ns, 10 * SEC);
	assert_int_equal(w->last.reason, ZT_BR_ANOMALY);
	assert_int_equal(w->last.offence, 1);
	assert_non_null(strstr(w->last.note, "bruteforce/short-sessions score 0.97 incident "));
	assert_true(strlen(w->last.note) < ZT_NOTE_LEN);
	/* The block is on the audit trail (blocks row) with the detector and the incident. */
	b = find_post(w, "block.add", 0);
	assert_true(b >= 0);
	assert_non_null(strstr(w->details[b], "\"source\":\"detector\""));
	assert_non_null(strstr(w->details[b], "\"ttl_s\":10"));
	assert_non_null(strstr(w->details[b], "\"threat_type\":\"bruteforce\""));
	/* The incident opens after the block, with its capture and the block's time. */
	o = find_post(w, "incident.open", 0);
	assert_true(o > b);
	assert_non_null(strstr(w->details[o], "\"action\":\"block\""));
	assert_non_null(strstr(w->details[o], "\"blocked\":\"203.0.113.44/32\""));
	assert_non_null(strstr(w->details[o], "/pcap/"));
	assert_non_null(strstr(w->details[o], ".pcapng.gz\""));
	assert_null(strstr(w->details[o], "\"block_ms\":0.000"));
	assert_int_equal(w->nlat, 1);
	assert_true(w->lat[0] > 0 && w->lat[0] < 1.0);
	/* Decided again while blocked: no second write, the same incident. */
	zt_engine_decide(e, &d);
	assert_int_equal(w->writes, 1);
	assert_int_equal(find_post(w, "incident.open", o + 1), -1);
	zt_engine_get_stats(e, &st);
	assert_int_equal(st.decisions[ZT_THREAT_BRUTEFORCE], 2);
	assert_int_equal(st.blocks[ZT_THREAT_BRUTEFORCE], 1);
	assert_int_equal(st.incidents_open[ZT_THREAT_BRUTEFORCE], 1);
	assert_int_equal(st.capture_files, 1);
	/* Protected: refused, recorded, counted; nothing written. */
	mk(&d, ZT_THREAT_SCAN, "198.18.7.9");
	zt_engine_decide(e, &d);
	assert_int_equal(w->writes, 1);
	o = find_post(w, "incident.open", o + 1);
	assert_true(o >= 0);
	assert_non_null(strstr(w->details[o], "\"action\":\"refused\""));
	assert_non_null(strstr(w->details[o], "\"action_reason\":\"protected\""));
	zt_engine_get_stats(e, &st);
	assert_int_equal(st.refused_by[0], 1);
	zt_engine_free(e);
	/* Stopping closes what is open: a close for each. */
	assert_true(find_post(w, "incident.close", 0) >= 0);
	world_free(w);
	free(w);
}

/* incidents.list through the API: counts over all, summaries up to the limit (0: all). */
static void list_via_api(struct zt_api *api, uint64_t limit, size_t want_n, uint64_t want_total)
{
	cbor_item_t *req = zt_cbor_map(), *data = NULL, *arr;
	uint64_t total = 0, open = 0;
	char err[256];

	assert_non_null(req);
	assert_int_equal(zt_cbor_put_u64(req, "limit", limit), 0);
	assert_int_equal(zt_api_invoke(api, ZT_OP_INCIDENTS_LIST, req, &data, err, sizeof(err)), 0);
	arr = zt_cbor_get(data, "incidents");
	assert_non_null(arr);
	assert_int_equal(cbor_array_size(arr), want_n);
	for (size_t k = 0; k < want_n; k++) {
		cbor_item_t *it = cbor_array_get(arr, k);

		assert_non_null(zt_cbor_get(it, "id"));
		assert_non_null(zt_cbor_get(it, "src"));
		cbor_decref(&it);
	}
	assert_int_equal(zt_cbor_get_u64(data, "total", &total), 0);
	assert_int_equal(zt_cbor_get_u64(data, "open", &open), 0);
	assert_int_equal(total, want_total);
	assert_int_equal(open, want_total);
	cbor_decref(&data);
	cbor_decref(&req);
}

static void test_api_list(void **state)
{
	struct world *w = calloc(1, sizeof(*w));
	struct zt_engine *e = mk_engine(w);
	struct zt_loop *loop;
	struct zt_api *api;
	struct zt_decision d;
	char path[128], err[256], a[32];

	for (int i = 0; i < 5; i++) {
		snprintf(a, sizeof(a), "203.0.113.%d", 10 + i);
		mk(&d, ZT_THREAT_BRUTEFORCE, a);
		zt_engine_decide(e, &d);
	}
	assert_int_equal(zt_loop_init(&loop), 0);
	snprintf(path, sizeof(path), "%s/api.sock", dir);
	assert_int_equal(zt_api_init(&api, loop, path, err, sizeof(err)), 0);
	assert_int_equal(zt_engine_register_api(e, api), 0);
	list_via_api(api, 2, 2, 5);
	list_via_api(api, 0, 5, 5);
	list_via_api(api, 100, 5, 5);
	zt_api_stop(api);
	zt_loop_stop(loop);
	zt_engine_free(e);
	world_free(w);
	free(w);
}

/* Kernel inputs: probes (scan), packets (flood), captured frames, violations. */
static void test_kernel_inputs(void **state)
{
	struct world *w = calloc(1, sizeof(*w));
	struct zt_engine *e = mk_engine(w);
	uint8_t dst[16] = { 198, 18, 2, 40 }, src[16] = { 203, 0, 113, 50 };
	struct zt_engine_stats st;
	int probes = 0;

	/* A horizontal scan: blocked within 10 probes. */
	while (!w->writes && probes < 10) {
		struct zt_probe p = { .family = 4,
				      .proto = 6,
				      .dport = 22,
				      .outcome = ZT_PROBE_FAIL_RST,
				      .ts_ns = 1 };

		memcpy(p.src, src, 4);
		memcpy(p.dst, dst, 4);
		p.dst[3] = (uint8_t)(probes++);
		zt_engine_on_probe(e, &p);
	}
	assert_int_equal(w->writes, 1);
	assert_int_equal(w->last.reason, ZT_BR_SCAN);
	assert_true(probes <= 10);
	/* A SYN flood from one source at 100k/s: blocked in well under 100 ms of packet time. */
	src[3] = 51;
	for (int k = 0; k < 10000 && w->writes == 1; k++)
		zt_engine_on_packets(e, 4, src, dst, ZT_FLOOD_SYN, 1,
				     5000 * SEC + (uint64_t)k * 10000);
	assert_int_equal(w->writes, 2);
	assert_int_equal(w->last.reason, ZT_BR_FLOOD);
	assert_memory_equal(w->last.addr, src, 4);
	/* A captured frame of the flooder goes to its incident's capture. */
	{
		uint8_t f[60] = { 0 };

		f[12] = 0x08;
		f[14] = 0x45;
		f[23] = 6;
		memcpy(f + 26, src, 4);
		memcpy(f + 30, dst, 4);
		assert_int_equal(zt_engine_on_capture(e, 1, 2, 1, "ratelimit", f, 60, 60), 1);
		f[29] = 99; /* someone else */
		assert_int_equal(zt_engine_on_capture(e, 1, 2, 1, "ratelimit", f, 60, 60), 0);
	}
	/* A policy violation: one alert event. */
	{
		struct zt_seg_violation v = { .verdict = 1,
					      .proto = 17,
					      .family = 4,
					      .dport = 7777,
					      .verdict_name = "denied",
					      .reason_name = "no-rule",
					      .protocol_name = "UDP",
					      .rule = "default-deny" };
		int before = w->posts;

		memcpy(v.saddr, src, 4);
		memcpy(v.daddr, dst, 4);
		for (int k = 0; k < 100; k++)
			zt_engine_on_violation(e, &v);
		assert_int_equal(w->posts, before + 1);
	}
	zt_engine_get_stats(e, &st);
	assert_int_equal(st.denials, 100);
	assert_int_equal(st.capture_packets, 1);
	zt_engine_free(e);
	world_free(w);
	free(w);
}

/*
 * The guard's drops of TCP headers cut short (nmap -f's tiny first
 * fragments) that name their ports: failed first contacts, a vertical scan
 * blocked within 10. Drops of other reasons, and cut headers without a
 * port, are no probes.
 */
static void test_cut_headers_are_probes(void **state)
{
	struct world *w = calloc(1, sizeof(*w));
	struct zt_engine *e = mk_engine(w);
	struct zt_ev_xdp_drop ev = { .hdr = { .type = ZT_EV_XDP_DROP, .ts_ns = 1000 },
				     .family = 4,
				     .proto = IPPROTO_TCP,
				     .reason = ZT_XR_BAD_L4,
				     .sport = 61000,
				     .represents = 1,
				     .pkt_len = 42 };
	struct zt_engine_stats st;
	int drops = 0;

	ev.saddr[0] = 203, ev.saddr[1] = 0, ev.saddr[2] = 113, ev.saddr[3] = 60;
	ev.daddr[0] = 198, ev.daddr[1] = 18, ev.daddr[2] = 2, ev.daddr[3] = 40;
	/* Not probes: no port read, another reason, ICMP. */
	zt_engine_on_xdp_drop(e, &ev);
	ev.dport = 22;
	ev.reason = ZT_XR_BAD_IP4;
	zt_engine_on_xdp_drop(e, &ev);
	ev.reason = ZT_XR_BAD_L4;
	ev.proto = IPPROTO_ICMP;
	zt_engine_on_xdp_drop(e, &ev);
	zt_engine_get_stats(e, &st);
	assert_int_equal(st.probes, 0);
	ev.proto = IPPROTO_TCP;
	while (!w->writes && drops < 10) {
		ev.dport = (uint16_t)(20 + drops++);
		ev.hdr.ts_ns += SEC / 1000;
		zt_engine_on_xdp_drop(e, &ev);
	}
	print_message("  blocked after %d cut headers\n", drops);
	assert_int_equal(w->writes, 1);
	assert_int_equal(w->last.reason, ZT_BR_SCAN);
	assert_memory_equal(w->last.addr, ev.saddr, 4);
	zt_engine_free(e);
	world_free(w);
	free(w);
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The engine's own part of decision-to-map latency (the map write is the integration test's). */
static void test_latency(void **state)
{
	struct world *w = calloc(1, sizeof(*w));
	struct zt_engine *e = mk_engine(w);

	for (int k = 0; k < 2000; k++) {
		struct zt_decision d;
		char ip[32];

		snprintf(ip, sizeof(ip), "203.0.%d.%d", 120 + k / 250, 1 + k % 250);
		mk(&d, ZT_THREAT_SLOWCONN, ip);
		zt_engine_decide(e, &d);
	}
	assert_int_equal(w->writes, 2000);
	assert_int_equal(w->nlat, 2000);
	qsort(w->lat, 2000, sizeof(double), cmp_d);
	print_message("  decision to write (engine only, with a capture file per incident): p50 "
		      "%.1f us, p99 %.1f us\n",
		      w->lat[1000] * 1e6, w->lat[1980] * 1e6);
	/* The figure goes in the report; the bound only catches a stall. */
	assert_true(w->lat[1980] < 0.100);
	zt_engine_free(e);
	world_free(w);
	free(w);
}

/* ---- the conntrack sweep against detector records on another thread ---- */

#define CT_N 40000
#define CT_SOURCES 200

struct sweep_run {
	struct zt_engine *e;
	int fd, r;
	int done; /* atomic */
};

static void *sweep_thread(void *arg)
{
	struct sweep_run *r = arg;

	r->r = zt_engine_ct_sweep(r->e, r->fd, zt_now_boot_ns());
	__atomic_store_n(&r->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/*
 * A conntrack map as tc_endpoint's: CT_N unanswered SYNs older than the
 * probe timeout, CT_N / CT_SOURCES from each of CT_SOURCES scanners (each
 * a scan for TRW, each a block). -errno when the map cannot be made.
 */
static int mk_ct_map(uint64_t now)
{
	struct zt_ct_key *k = calloc(CT_N, sizeof(*k));
	struct zt_ct_val *v = calloc(CT_N, sizeof(*v));
	__u32 count = CT_N;
	int fd, r;

	assert_non_null(k);
	assert_non_null(v);
	fd = bpf_map_create(BPF_MAP_TYPE_HASH, "zt_test_ct", sizeof(*k), sizeof(*v), CT_N, NULL);
	if (fd < 0) {
		r = -errno;
		free(k);
		free(v);
		return r;
	}
	for (int i = 0; i < CT_N; i++) {
		int s = i / (CT_N / CT_SOURCES), n = i % (CT_N / CT_SOURCES);

		k[i].ifindex = 2;
		k[i].family = 4;
		k[i].proto = 6;
		k[i].saddr[0] = 198;
		k[i].saddr[1] = 18;
		k[i].saddr[2] = (uint8_t)(10 + s / 250);
		k[i].saddr[3] = (uint8_t)(1 + s % 250);
		k[i].daddr[0] = 198;
		k[i].daddr[1] = 19;
		k[i].daddr[2] = (uint8_t)(n / 250);
		k[i].daddr[3] = (uint8_t)(1 + n % 250);
		k[i].sport = (uint16_t)(30000 + n);
		k[i].dport = 22;
		v[i].first_ns = v[i].d[0].last_ns = now - 5 * SEC;
		v[i].d[0].packets = 1;
		v[i].d[0].bytes = 60;
		v[i].flags_seen[0] = ZT_DF_SYN;
	}
	r = bpf_map_update_batch(fd, k, v, &count, NULL);
	free(k);
	free(v);
	if (r < 0 || count != CT_N) {
		r = -errno;
		close(fd);
		return r ? r : -EIO;
	}
	return fd;
}

/*
 * Detector records as the ring-buffer consumer hands them over, one every
 * 200 us from sources of 203.0.113.0/21 in turn, until *done (or max):
 * how long each call waited for the engine, in ms, into wait; how many.
 */
static int records_until(struct zt_engine *e, const int *done, double *wait, int max)
{
	uint8_t dst[16] = { 198, 18, 2, 40 }, src[16] = { 203, 0, 113, 0 };
	int n = 0;

	while (!__atomic_load_n(done, __ATOMIC_ACQUIRE) && n < max) {
		uint64_t a = zt_now_mono_ns();

		src[3] = (uint8_t)(n % 250);
		src[2] = (uint8_t)(113 + (n / 250) % 8);
		zt_engine_on_packets(e, 4, src, dst, ZT_FLOOD_SYN, 1, zt_now_boot_ns());
		wait[n++] = (double)(zt_now_mono_ns() - a) / 1e6;
		usleep(200);
	}
	qsort(wait, (size_t)n, sizeof(double), cmp_d);
	return n;
}

/*
 * The loop's conntrack sweep holds the engine's lock in short pieces, and
 * a detector record on another thread (the ring-buffer consumer's) gets
 * the lock while a sweep of CT_N entries runs, without waiting for it:
 * it used to wait for a slice of 512 entries with the sweep's own tables
 * under the lock (52 ms measured on a loaded node), and the mutex let the
 * loop take it again ahead of the waiting record. The sweep's results
 * stay whole: every entry a probe, every scanner one incident and one block.
 */
static void test_sweep_lets_records_in(void **state)
{
	struct world *w = calloc(1, sizeof(*w));
	struct zt_engine *e = mk_engine_ct(w, 2 * CT_N);
	struct sweep_run run = { .e = e };
	struct zt_engine_stats st;
	static double wait[100000];
	pthread_t th;
	uint64_t t0;
	int n;

	run.fd = mk_ct_map(zt_now_boot_ns());
	if (run.fd < 0) {
		print_message("  cannot make a BPF hash map (%s): needs CAP_BPF\n",
			      strerror(-run.fd));
		fail();
	}
	t0 = zt_now_mono_ns();
	assert_int_equal(pthread_create(&th, NULL, sweep_thread, &run), 0);
	/* Records as the consumer reads them while the sweep runs. */
	n = records_until(e, &run.done, wait, 100000);
	pthread_join(th, NULL);
	close(run.fd);
	assert_int_equal(run.r, 0);
	zt_engine_get_stats(e, &st);
	print_message("  sweep of %d entries: %.1f ms, %" PRIu64 " lock holds, longest %.2f ms; "
		      "%d records meanwhile: wait p50 %.3f ms, p99 %.3f ms, max %.3f ms\n",
		      CT_N, (double)(zt_now_mono_ns() - t0) / 1e6, st.last_sweep_holds,
		      st.last_sweep_hold_max_ms, n, wait[n / 2], wait[n * 99 / 100], wait[n - 1]);
	/* Whole: every entry seen, every one a probe, every scanner one incident, one block. */
	assert_int_equal(st.sweep_entries, CT_N);
	assert_int_equal(st.probes, CT_N);
	assert_int_equal(st.incidents_opened[ZT_THREAT_SCAN], CT_SOURCES);
	assert_int_equal(st.blocks[ZT_THREAT_SCAN], CT_SOURCES);
	assert_true(n >= 20);
	/* Records went in while it ran, none waiting for a slice of the sweep. */
	assert_true(wait[n * 99 / 100] < 2.0);
	/* In pieces of at most 64 entries' detector work. */
	assert_true(st.last_sweep_holds >= CT_N / 64);
	zt_engine_free(e);
	world_free(w);
	free(w);
}

#define FLOWS_N 100000

struct flows_run {
	struct zt_engine *e;
	const struct zt_flow_record *recs;
	int done; /* atomic */
};

static void *flows_thread(void *arg)
{
	struct flows_run *r = arg;

	zt_engine_on_flows(r->e, r->recs, FLOWS_N);
	__atomic_store_n(&r->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/*
 * A batch of flow records (the exporter's, thousands under a flood of
 * flows) on the loop: a detector record on another thread gets the lock
 * while it runs. It used to wait for the whole batch under one hold.
 */
static void test_flows_let_records_in(void **state)
{
	struct world *w = calloc(1, sizeof(*w));
	struct zt_engine *e = mk_engine(w);
	struct zt_flow_record *recs = calloc(FLOWS_N, sizeof(*recs));
	struct flows_run run = { .e = e };
	struct zt_engine_stats st;
	static double wait[100000];
	pthread_t th;
	uint64_t t0;
	int n;

	assert_non_null(recs);
	for (int i = 0; i < FLOWS_N; i++) {
		recs[i].family = AF_INET;
		recs[i].kind = ZT_FLOW_KIND_FLOW;
		recs[i].source_ip[0] = 198;
		recs[i].source_ip[1] = 18;
		recs[i].source_ip[2] = (uint8_t)(i >> 8);
		recs[i].source_ip[3] = (uint8_t)i;
		recs[i].packet_count = 3;
		recs[i].bytes_sent = 180;
		recs[i].end_time_us = 1;
	}
	run.recs = recs;
	t0 = zt_now_mono_ns();
	assert_int_equal(pthread_create(&th, NULL, flows_thread, &run), 0);
	n = records_until(e, &run.done, wait, 100000);
	pthread_join(th, NULL);
	zt_engine_get_stats(e, &st);
	print_message("  %d flow records: %.1f ms; %d records meanwhile: wait p50 %.3f ms, "
		      "p99 %.3f ms, max %.3f ms\n",
		      FLOWS_N, (double)(zt_now_mono_ns() - t0) / 1e6, n, wait[n / 2],
		      wait[n * 99 / 100], wait[n - 1]);
	assert_int_equal(st.records, FLOWS_N);
	/*
	 * One hold for the batch: 2 records in, waiting 10.9-11.7 ms (the whole
	 * batch). Now tens get in, and 9 in 10 wait under 2 ms: the p99 of ~50
	 * is their largest, which a preemption of the shared machine alone can
	 * put over (3.1 ms once in a CI run).
	 */
	assert_true(wait[n * 9 / 10] < 2.0);
	assert_true(n >= 20);
	zt_engine_free(e);
	free(recs);
	world_free(w);
	free(w);
}

/*
 * What the sweep takes as a failed connection attempt: an entry whose
 * originator opened with a bare SYN and got a reset (or nothing). Not one
 * opened by a SYN-ACK (a server answering spoofed SYNs of a flood, after an
 * agent start: the resets come back from the ports the flood chose) nor a
 * mid-flow pickup, whatever comes back; a handshake is a success. But a
 * pickup (an ACK no connection owned) that policy denied on its way to an
 * endpoint is an ACK scan's probe that nothing answers: a failure.
 */
/* A conntrack map for the sweep tests (skips the test without CAP_BPF). */
static int probe_ct_map(void)
{
	int fd = bpf_map_create(BPF_MAP_TYPE_HASH, "zt_test_ct", sizeof(struct zt_ct_key),
				sizeof(struct zt_ct_val), 64, NULL);

	if (fd < 0) {
		print_message("  cannot make a BPF hash map (%s): needs CAP_BPF\n",
			      strerror(errno));
		skip();
	}
	return fd;
}

/* One sweep of fd must give n probes; then frees what the test made. */
static void sweep_probes(struct world *w, struct zt_engine *e, int fd, uint64_t now, int n)
{
	struct zt_engine_stats st;

	assert_true(zt_engine_ct_sweep(e, fd, now) >= 0);
	zt_engine_get_stats(e, &st);
	print_message("  %" PRIu64 " entries swept, %" PRIu64 " probes (%d expected)\n",
		      st.sweep_entries, st.probes, n);
	assert_int_equal(st.probes, n);
	close(fd);
	zt_engine_free(e);
	world_free(w);
	free(w);
}

static void test_sweep_probes_only_syn_openers(void **state)
{
	static const struct {
		uint8_t f0, f1, dir, verdict;
		bool probe;
	} cases[] = {
		{ ZT_DF_SYN, ZT_DF_RST | ZT_DF_ACK, ZT_DIR_EGRESS, ZT_VERDICT_ALLOW,
		  true }, /* refused */
		{ ZT_DF_SYN, 0, ZT_DIR_EGRESS, ZT_VERDICT_ALLOW,
		  true }, /* unanswered, past the timeout */
		{ ZT_DF_SYN | ZT_DF_ACK, ZT_DF_SYN | ZT_DF_ACK, ZT_DIR_EGRESS, ZT_VERDICT_ALLOW,
		  true }, /* a success */
		{ ZT_DF_SYN | ZT_DF_ACK, ZT_DF_RST, ZT_DIR_EGRESS, ZT_VERDICT_ALLOW,
		  false }, /* SYN-ACK first, reset */
		{ ZT_DF_SYN | ZT_DF_ACK, 0, ZT_DIR_EGRESS, ZT_VERDICT_ALLOW,
		  false }, /* SYN-ACK first, no answer */
		{ ZT_DF_ACK, ZT_DF_RST, ZT_DIR_EGRESS, ZT_VERDICT_ALLOW,
		  false }, /* mid-flow pickup, reset */
		{ ZT_DF_ACK, 0, ZT_DIR_INGRESS, ZT_VERDICT_DENY,
		  true }, /* an ACK scan's probe, denied on its way in */
		{ ZT_DF_ACK, 0, ZT_DIR_INGRESS, ZT_VERDICT_ALLOW,
		  false }, /* a pickup policy let in (a reset answers a probe: a stray) */
		{ ZT_DF_ACK, 0, ZT_DIR_EGRESS, ZT_VERDICT_DENY,
		  false }, /* the endpoint's own pickup, denied on its way out */
		{ ZT_DF_SYN | ZT_DF_ACK, 0, ZT_DIR_INGRESS, ZT_VERDICT_DENY,
		  false }, /* a SYN-ACK denied on its way in */
		{ 0, 0, ZT_DIR_INGRESS, ZT_VERDICT_DENY,
		  true }, /* a NULL scan's probe (no flags), denied on its way in */
		{ 0, 0, ZT_DIR_INGRESS, ZT_VERDICT_ALLOW,
		  false }, /* one policy let in (the endpoint's reset: a stray) */
		{ 0, 0, ZT_DIR_EGRESS, ZT_VERDICT_DENY,
		  false }, /* the endpoint's own, denied on its way out */
	};
	struct world *w = calloc(1, sizeof(*w));
	struct zt_engine *e = mk_engine_ct(w, 64);
	uint64_t now = zt_now_boot_ns();
	int fd, n = 0;

	fd = probe_ct_map();
	for (size_t i = 0; i < ZT_ARRAY_SIZE(cases); i++) {
		struct zt_ct_key k = { .ifindex = 2, .family = 4, .proto = 6, .dport = 8080 };
		struct zt_ct_val v = { .first_ns = now - 5 * SEC,
				       .dir = cases[i].dir,
				       .verdict = cases[i].verdict };

		k.saddr[0] = 198, k.saddr[1] = 18, k.saddr[2] = 2, k.saddr[3] = 40;
		k.daddr[0] = 198, k.daddr[1] = 18, k.daddr[2] = 0, k.daddr[3] = (uint8_t)(1 + i);
		k.sport = (uint16_t)(40000 + i);
		v.d[0].packets = 1;
		v.d[0].last_ns = v.first_ns;
		v.flags_seen[0] = cases[i].f0;
		v.flags_seen[1] = cases[i].f1;
		v.d[1].packets = cases[i].f1 ? 1 : 0;
		n += cases[i].probe;
		assert_int_equal(bpf_map_update_elem(fd, &k, &v, BPF_ANY), 0);
	}
	sweep_probes(w, e, fd, now, n);
}

/* A short TCP session of 198.18.0.66 to 198.18.2.40:5432 that ended as a refused login does. */
static void refused_session(struct zt_ct_key *k, struct zt_ct_val *v, int i, uint64_t now)
{
	memset(k, 0, sizeof(*k));
	memset(v, 0, sizeof(*v));
	k->ifindex = 2, k->family = 4, k->proto = 6;
	k->saddr[0] = 198, k->saddr[1] = 18, k->saddr[2] = 0, k->saddr[3] = 66;
	k->daddr[0] = 198, k->daddr[1] = 18, k->daddr[2] = 2, k->daddr[3] = 40;
	k->sport = (uint16_t)(40000 + i);
	k->dport = 5432;
	v->dir = ZT_DIR_INGRESS;
	v->verdict = ZT_VERDICT_ALLOW;
	v->state = ZT_CT_CLOSED;
	v->flags_seen[0] = v->flags_seen[1] = ZT_DF_SYN | ZT_DF_ACK | ZT_DF_FIN;
	v->first_ns = now - SEC + (uint64_t)i * 10000000ULL;
	v->d[0].packets = 5;
	v->d[0].bytes = 5 * 52 + 200;
	v->d[0].last_ns = v->first_ns + 5000000;
	v->d[1].packets = 4;
	v->d[1].bytes = 4 * 52 + 150;
	v->d[1].last_ns = v->first_ns + 4000000;
}

/*
 * Sessions tc_endpoint sent as they closed (ZT_EV_SESSION) reach the
 * brute-force detector at once: the tenth such session of one source
 * blocks it, with no sweep; an end sent twice counts once (nine sessions
 * sent twice each decide nothing). The sweep then leaves the entries that say so
 * (session_sent) and takes the one no event brought; the receiving
 * endpoint's entry of a flow between two endpoints is neither's.
 */
static void test_session_events(void **state)
{
	struct world *w = calloc(1, sizeof(*w));
	struct zt_engine *e = mk_engine_ct(w, 64);
	struct zt_engine_stats st;
	uint64_t now = zt_now_boot_ns();
	struct zt_ct_key k[12];
	struct zt_ct_val v[12];
	int fd;

	fd = probe_ct_map();
	for (int i = 0; i < 12; i++)
		refused_session(&k[i], &v[i], i, now);
	v[0].peer_ep_id = 9;
	zt_engine_on_session(e, &k[0], &v[0]);
	for (int i = 1; i < 10; i++) {
		v[i].session_sent = 1;
		zt_engine_on_session(e, &k[i], &v[i]);
		/*
		 * The same end again, as the other direction's last packet on
		 * another CPU sends it (its own counters a packet further): one
		 * session, judged once.
		 */
		v[i].d[1].packets++;
		zt_engine_on_session(e, &k[i], &v[i]);
		v[i].d[1].packets--;
	}
	zt_engine_get_stats(e, &st);
	assert_int_equal(st.sessions, 9);
	assert_int_equal(st.sessions_repeated, 9);
	assert_int_equal(w->writes, 0);
	v[10].session_sent = 1;
	zt_engine_on_session(e, &k[10], &v[10]);
	assert_int_equal(w->writes, 1);
	assert_non_null(strstr(w->last.note, "bruteforce/short-sessions"));
	assert_int_equal(w->last.addr[3], 66);
	for (int i = 0; i < 12; i++)
		assert_int_equal(bpf_map_update_elem(fd, &k[i], &v[i], BPF_ANY), 0);
	assert_true(zt_engine_ct_sweep(e, fd, now) >= 0);
	zt_engine_get_stats(e, &st);
	assert_int_equal(st.sessions, 11);
	close(fd);
	zt_engine_free(e);
	world_free(w);
	free(w);
}

/* n sessions of client 203.0.113.<who> to the node, each bytes_in out and bytes_out back. */
static void host_sessions(struct zt_engine *e, uint8_t who, int n, uint64_t bytes_in,
			  uint64_t bytes_out, uint8_t served, uint8_t refused, uint8_t challenged)
{
	uint64_t now = zt_now_boot_ns();
	struct zt_ev_host_session ev = { .hdr = { .type = ZT_EV_HOST_SESSION },
					 .family = 4,
					 .served = served,
					 .refused = refused,
					 .challenged = challenged,
					 .dport = 5432,
					 .saddr = { 203, 0, 113, who },
					 .daddr = { 198, 18, 0, 2 },
					 .bytes_in = bytes_in,
					 .bytes_out = bytes_out,
					 .segs_in = 6,
					 .segs_out = 5 };

	for (int i = 0; i < n; i++) {
		ev.sport = (uint16_t)(40000 + i);
		ev.first_ns = now + (uint64_t)i * 1000000;
		ev.hdr.ts_ns = ev.first_ns + 3000000;
		zt_engine_on_host_session(e, &ev);
	}
}

/*
 * Sessions a service of the node itself accepted (ZT_EV_HOST_SESSION, the
 * socket's counters at its close) go to the brute-force detector too:
 * short refused logins decide at the tenth; sessions that moved content
 * (a query's result), were served (an HTTP 2xx read at the uplink) or
 * ended at the server's request for a password (pg_isready) decide nothing; refusals read at the uplink decide however large.
 */
static void test_host_sessions(void **state)
{
	struct world *w = calloc(1, sizeof(*w));
	struct zt_engine *e = mk_engine(w);

	/* A client that gets its queries' answers: 90 bytes asked, 40 KB back. */
	host_sessions(e, 78, 12, 90, 40000, 0, 0, 0);
	/* Health checks of a tiny page, short as failed logins, but served (HTTP 2xx). */
	host_sessions(e, 79, 12, 90, 117, 1, 0, 0);
	/* pg_isready: a startup packet, the server's request for a password, gone. */
	host_sessions(e, 81, 12, 52, 24, 0, 0, 1);
	assert_int_equal(w->writes, 0);
	/* Refused logins: the startup and a password out, a challenge and an error back. */
	host_sessions(e, 77, 9, 180, 150, 0, 0, 0);
	assert_int_equal(w->writes, 0);
	host_sessions(e, 77, 1, 180, 150, 0, 0, 0);
	assert_int_equal(w->writes, 1);
	assert_int_equal(w->last.addr[3], 77);
	assert_non_null(strstr(w->last.note, "bruteforce/short-sessions"));
	/* Refusals read at the uplink (a 401 page each, an exchange by its bytes) decide too. */
	host_sessions(e, 80, 10, 110, 377, 0, 1, 0);
	assert_int_equal(w->writes, 2);
	assert_int_equal(w->last.addr[3], 80);
	assert_non_null(strstr(w->last.note, "bruteforce/refused-logins"));
	zt_engine_free(e);
	world_free(w);
	free(w);
}

/*
 * SSH guesses refused as they were (ZT_EV_REFUSED), from four sessions
 * of one client still open: the tenth blocks it (bruteforce/ssh-failures);
 * the sessions' ends then, their refusals all counted (ssh_live), decide
 * nothing more. The node's own sshd's come without a session start.
 */
static void test_ssh_refused(void **state)
{
	struct world *w = calloc(1, sizeof(*w));
	struct zt_engine *e = mk_engine(w);
	uint64_t now = zt_now_boot_ns();
	struct zt_ev_refused ev = { .hdr = { .type = ZT_EV_REFUSED },
				    .family = 4,
				    .origin = ZT_REFUSED_FROM_NODE,
				    .dport = 22,
				    .saddr = { 203, 0, 113, 90 },
				    .daddr = { 198, 18, 0, 2 } };
	struct zt_ev_host_session hs = { .hdr = { .type = ZT_EV_HOST_SESSION },
					 .family = 4,
					 .dport = 22,
					 .saddr = { 203, 0, 113, 90 },
					 .daddr = { 198, 18, 0, 2 },
					 .bytes_in = 1800,
					 .bytes_out = 1900,
					 .segs_in = 20,
					 .segs_out = 18,
					 .ssh_live = 9 };
	struct zt_engine_stats st;

	(void)state;
	for (int i = 0; i < 10; i++) {
		assert_int_equal(w->writes, 0);
		ev.sport = (uint16_t)(50000 + i % 4);
		ev.refused = (uint8_t)(i / 4 + 1);
		ev.hdr.ts_ns = now + (uint64_t)i * 75000000;
		zt_engine_on_refused(e, &ev);
	}
	assert_int_equal(w->writes, 1);
	assert_int_equal(w->last.addr[3], 90);
	assert_non_null(strstr(w->last.note, "bruteforce/ssh-failures"));
	for (int i = 0; i < 4; i++) {
		hs.sport = (uint16_t)(50000 + i);
		hs.first_ns = now;
		hs.hdr.ts_ns = now + 3000000000ULL;
		zt_engine_on_host_session(e, &hs);
	}
	assert_int_equal(w->writes, 1);
	zt_engine_get_stats(e, &st);
	assert_int_equal(st.ssh_refused, 10);
	assert_int_equal(st.sessions, 4);
	zt_engine_free(e);
	world_free(w);
	free(w);
}

/*
 * ICMP entries: a request (echo, timestamp; ICMPv6 echo) is an attempt,
 * answered or not; an error or a reply is none. A pod answering a spoofed
 * UDP flood sends a port unreachable to every random source: one entry
 * each, never answered, which counted as its failed probes made the pod a
 * horizontal scanner (flagged and blocked, the flood's victim).
 */
static void test_sweep_icmp_probes_only_requests(void **state)
{
	static const struct {
		uint8_t proto, type1; /* the opening packet's type + 1 (0: not kept) */
		bool answered, probe;
	} cases[] = {
		{ 1, 3 + 1, false, false }, /* port unreachable */
		{ 1, 11 + 1, false, false }, /* time exceeded */
		{ 1, 0 + 1, false, false }, /* echo reply first: picked up */
		{ 1, 0, false, false }, /* an older agent's entry */
		{ 1, 8 + 1, false, true }, /* echo request, unanswered */
		{ 1, 8 + 1, true, true }, /* echo request, answered */
		{ 1, 13 + 1, false, true }, /* timestamp request */
		{ 58, 1 + 1, false, false }, /* ICMPv6 destination unreachable */
		{ 58, 129 + 1, false, false }, /* ICMPv6 echo reply */
		{ 58, 128 + 1, false, true }, /* ICMPv6 echo request */
	};
	struct world *w = calloc(1, sizeof(*w));
	struct zt_engine *e = mk_engine_ct(w, 64);
	uint64_t now = zt_now_boot_ns();
	int fd, n = 0;

	fd = probe_ct_map();
	for (size_t i = 0; i < ZT_ARRAY_SIZE(cases); i++) {
		struct zt_ct_key k = { .ifindex = 2, .proto = cases[i].proto };
		struct zt_ct_val v = { .first_ns = now - 5 * SEC, .dir = ZT_DIR_EGRESS };

		if (cases[i].proto == 1) {
			k.family = 4;
			k.saddr[0] = 198, k.saddr[1] = 18, k.saddr[2] = 2, k.saddr[3] = 40;
			k.daddr[0] = 198, k.daddr[1] = 19, k.daddr[2] = 7, k.daddr[3] = (uint8_t)i;
		} else {
			k.family = 6;
			k.saddr[0] = 0x20, k.saddr[1] = 0x01, k.saddr[15] = 0x40;
			k.daddr[0] = 0x20, k.daddr[1] = 0x01, k.daddr[14] = 7,
			k.daddr[15] = (uint8_t)i;
		}
		v.icmp_type1 = cases[i].type1;
		v.d[0].packets = 1;
		v.d[0].last_ns = v.first_ns;
		v.d[1].packets = cases[i].answered;
		n += cases[i].probe;
		assert_int_equal(bpf_map_update_elem(fd, &k, &v, BPF_ANY), 0);
	}
	sweep_probes(w, e, fd, now, n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_decision_to_block, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kernel_inputs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cut_headers_are_probes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_latency, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sweep_lets_records_in, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flows_let_records_in, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sweep_probes_only_syn_openers, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_session_events, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_sessions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ssh_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sweep_icmp_probes_only_requests, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
