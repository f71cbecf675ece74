// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests: the flow exporter on real kernel maps (a conntrack-shaped LRU
 * hash filled with crafted entries, the export map pinned on a bpffs), and
 * the XDP drop aggregation. Runs as root.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <pthread.h>
#include <time.h>

#include <bpf/bpf.h>

#include "detect/features.h"
#include "guard/dropagg.h"
#include "records/flowexp.h"
#include "agent/util.h"
#include "private_mounts.h"

#define S 1000000000ULL
#define IF_A 1 /* lo: exists in every namespace */
#define IF_B 2
#define CT_MAX 8192

static char pindir[128];
static int ct_fd = -1;
static bool if_b_alive = true;

/* What the sink received. */
#define GOT_MAX 4096
static struct zt_flow_record got[GOT_MAX];
static size_t n_got;

static void sink(void *ctx, const struct zt_flow_record *r, size_t n)
{
	for (size_t i = 0; i < n && n_got < GOT_MAX; i++)
		got[n_got++] = r[i];
}

static void workload(void *ctx, uint32_t id, uint32_t ep, char *buf, size_t n)
{
	if (ep)
		snprintf(buf, n, "ns/ep%u", ep);
	else
		snprintf(buf, n, "identity:%u", id);
}

static void rule(void *ctx, uint32_t gen, uint32_t rule_id, uint8_t reason, char *buf, size_t n)
{
	snprintf(buf, n, "rule %u gen %u reason %u", rule_id, gen, reason);
}

static int ep_ifindex(void *ctx, uint32_t ep)
{
	return ep == 1 ? IF_A : ep == 2 ? IF_B : 0;
}

static bool is_endpoint(void *ctx, int ifindex)
{
	return ifindex == IF_A || (ifindex == IF_B && if_b_alive);
}

static const struct zt_flowexp_names names = {
	.workload = workload,
	.rule = rule,
	.ep_ifindex = ep_ifindex,
	.is_endpoint = is_endpoint,
};

static int setup(void **state)
{
	/* A bpffs of our own for the export map's pin. */
	snprintf(pindir, sizeof(pindir), "/tmp/zt-flowexp-test.XXXXXX");
	if (!mkdtemp(pindir) || mount("bpf", pindir, "bpf", 0, NULL) < 0)
		return -1;
	ct_fd = bpf_map_create(BPF_MAP_TYPE_LRU_HASH, "ct_test", sizeof(struct zt_ct_key),
			       sizeof(struct zt_ct_val), CT_MAX, NULL);
	n_got = 0;
	if_b_alive = true;
	return ct_fd < 0 ? -1 : 0;
}

static int teardown(void **state)
{
	char p[200];

	close(ct_fd);
	snprintf(p, sizeof(p), "%s/%s", pindir, ZT_PIN_FLOW_EXPORT);
	unlink(p);
	umount2(pindir, MNT_DETACH);
	return rmdir(pindir);
}

static struct zt_flowexp *open_x(void)
{
	struct zt_flowexp *x = NULL;
	char err[256] = "";

	assert_int_equal(
		zt_flowexp_open(pindir, CT_MAX, 60 * S, "node-t", &names, &x, err, sizeof(err)), 0);
	return x;
}

static struct zt_ct_key key(uint32_t ifindex, uint8_t proto, const char *s, uint16_t sp,
			    const char *d, uint16_t dp)
{
	struct zt_ct_key k = { .ifindex = ifindex, .family = 4, .proto = proto };

	inet_pton(AF_INET, s, k.saddr);
	inet_pton(AF_INET, d, k.daddr);
	k.sport = sp;
	k.dport = dp;
	return k;
}

static struct zt_ct_val val(uint64_t first, uint64_t last, uint8_t state, uint8_t verdict)
{
	struct zt_ct_val v = { .first_ns = first,
			       .d[0].last_ns = last,
			       .state = state,
			       .verdict = verdict,
			       .dir = ZT_DIR_EGRESS,
			       .local_id = 256,
			       .peer_id = 2,
			       .ep_id = 1,
			       .gen = 3,
			       .rule_id = 7,
			       .reason = ZT_REASON_RULE_ALLOW };

	v.d[0].packets = 10;
	v.d[1].packets = 8;
	v.d[0].bytes = 1000;
	v.d[1].bytes = 800;
	v.flags_seen[0] = 0x1b; /* FIN SYN PSH ACK */
	v.flags_seen[1] = 0x12; /* SYN ACK */
	return v;
}

static void put(const struct zt_ct_key *k, const struct zt_ct_val *v)
{
	assert_int_equal(bpf_map_update_elem(ct_fd, k, v, BPF_ANY), 0);
}

static bool present(const struct zt_ct_key *k)
{
	struct zt_ct_val v;

	return bpf_map_lookup_elem(ct_fd, k, &v) == 0;
}

static void test_closed_tcp_final_once(void **state)
{
	struct zt_flowexp *x = open_x();
	uint64_t now = zt_now_boot_ns() + 100 * S;
	struct zt_ct_key k = key(IF_A, IPPROTO_TCP, "198.18.1.10", 40000, "198.18.1.20", 8080);
	struct zt_ct_val v = val(now - 5 * S, now - 2 * S, ZT_CT_CLOSED, ZT_VERDICT_ALLOW);
	char a[INET_ADDRSTRLEN];

	put(&k, &v);
	assert_int_equal(zt_flowexp_sweep(x, ct_fd, now, sink, NULL), 1);
	assert_int_equal(n_got, 1);
	assert_int_equal(got[0].bytes_sent, 1000);
	assert_int_equal(got[0].bytes_received, 800);
	assert_int_equal(got[0].packets_sent, 10);
	assert_int_equal(got[0].packet_count, 18);
	assert_int_equal(got[0].tcp_flags, 0x1b);
	assert_int_equal(got[0].duration_ms, 3000);
	assert_int_equal(got[0].source_port, 40000);
	assert_int_equal(got[0].dest_port, 8080);
	assert_string_equal(inet_ntop(AF_INET, got[0].source_ip, a, sizeof(a)), "198.18.1.10");
	assert_string_equal(inet_ntop(AF_INET, got[0].dest_ip, a, sizeof(a)), "198.18.1.20");
	assert_int_equal(got[0].protocol, 6);
	assert_string_equal(got[0].verdict, "allowed");
	assert_false(got[0].blocked);
	assert_string_equal(got[0].drop_reason, "");
	assert_string_equal(got[0].policy, "rule 7 gen 3 reason 1");
	assert_string_equal(got[0].source_workload, "ns/ep1");
	assert_string_equal(got[0].dest_workload, "identity:2");
	assert_int_equal(got[0].source_identity, 256);
	assert_int_equal(got[0].dest_identity, 2);
	assert_string_equal(got[0].direction, "egress");
	assert_string_equal(got[0].interface, "lo");
	assert_string_equal(got[0].node, "node-t");
	/* Kept until its close timeout, not recorded twice. */
	assert_true(present(&k));
	assert_int_equal(zt_flowexp_sweep(x, ct_fd, now + S, sink, NULL), 0);
	assert_int_equal(n_got, 1);
	/* A late ACK after the final: recorded as a delta when the entry goes. */
	v.d[0].packets = 11;
	v.d[0].bytes = 1052;
	v.d[0].last_ns = now;
	put(&k, &v);
	assert_int_equal(zt_flowexp_sweep(x, ct_fd, now + 5 * S, sink, NULL), 0);
	assert_int_equal(zt_flowexp_sweep(x, ct_fd, now + 11 * S, sink, NULL), 1);
	assert_int_equal(got[1].packets_sent, 1);
	assert_int_equal(got[1].bytes_sent, 52);
	assert_int_equal(got[1].bytes_received, 0);
	assert_false(present(&k));
	zt_flowexp_close(x);
}

/*
 * Closed flows recorded final wait for their close timeout without being
 * read again on every sweep (a connection churn leaves thousands of them,
 * three syscalls each per sweep); a late packet on one is still recorded
 * when the entry goes, and a key reused by a new flow is not skipped.
 */
static void test_recorded_closed_not_reread(void **state)
{
	struct zt_flowexp *x = open_x();
	uint64_t now = zt_now_boot_ns() + 100 * S;
	struct zt_flowexp_stats st0, st1;
	struct zt_ct_key k[500];
	struct zt_ct_val v = val(now - 5 * S, now - 2 * S, ZT_CT_CLOSED, ZT_VERDICT_ALLOW);
	struct zt_ct_val nv;
	int n = 0;

	for (int i = 0; i < 500; i++) {
		k[i] = key(IF_A, IPPROTO_TCP, "198.18.1.10", (uint16_t)(20000 + i), "198.18.1.20",
			   8080);
		put(&k[i], &v);
	}
	for (int i = 0; i < 5 && n < 500; i++)
		n += zt_flowexp_sweep(x, ct_fd, now, sink, NULL);
	assert_int_equal(n, 500);
	zt_flowexp_get_stats(x, &st0);
	for (int i = 1; i <= 8; i++)
		assert_int_equal(zt_flowexp_sweep(x, ct_fd, now + i * S / 2, sink, NULL), 0);
	zt_flowexp_get_stats(x, &st1);
	assert_int_equal(st1.rechecked - st0.rechecked, 0);
	assert_int_equal(n_got, 500);
	/* A late ACK on one, a new flow on another's key (a new first packet). */
	v.d[0].packets = 11;
	v.d[0].bytes = 1052;
	v.d[0].last_ns = now + 4 * S;
	put(&k[7], &v);
	nv = val(now + 4 * S, now + 4 * S + S / 10, ZT_CT_CLOSED, ZT_VERDICT_ALLOW);
	put(&k[9], &nv);
	assert_int_equal(zt_flowexp_sweep(x, ct_fd, now + 5 * S, sink, NULL), 1);
	assert_int_equal(n_got, 501);
	assert_int_equal(got[500].source_port, 20009);
	assert_int_equal(got[500].packets_sent, 10);
	/* Their close timeouts: every entry goes, the late ACK recorded as its delta. */
	n = 0;
	for (int i = 0; i < 5; i++)
		n += zt_flowexp_sweep(x, ct_fd, now + 30 * S, sink, NULL);
	assert_int_equal(n, 1);
	assert_int_equal(got[501].source_port, 20007);
	assert_int_equal(got[501].packets_sent, 1);
	assert_int_equal(got[501].bytes_sent, 52);
	for (int i = 0; i < 500; i++)
		assert_false(present(&k[i]));
	zt_flowexp_close(x);
}

/* The identity source: knows the flow 198.18.1.10:40100 -> 198.18.1.20:8443 only. */
static bool ids_of(void *ctx, const struct zt_ct_key *k, char *src, char *dst, size_t n)
{
	(*(int *)ctx)++;
	if (k->sport != 40100)
		return false;
	snprintf(src, n, "spiffe://td/ns/a/sa/web");
	snprintf(dst, n, "spiffe://td/ns/b/sa/db");
	return true;
}

/*
 * mtls: the flow went through the agent (VIA) and was allowed; the SPIFFE
 * IDs come from the identity source. Required but not carried (a bypass
 * drop: NEED alone), or denied by requireTLS: not tunnelled, no IDs asked.
 */
static void test_mtls_identities(void **state)
{
	struct zt_flowexp *x = open_x();
	uint64_t now = zt_now_boot_ns() + 100 * S;
	struct zt_ct_key k1 = key(IF_A, IPPROTO_TCP, "198.18.1.10", 40100, "198.18.1.20", 8443);
	struct zt_ct_key k2 = key(IF_A, IPPROTO_TCP, "198.18.1.10", 40101, "198.18.1.20", 8443);
	struct zt_ct_key k3 = key(IF_A, IPPROTO_TCP, "198.18.1.10", 40102, "198.18.1.20", 8443);
	struct zt_ct_key k4 = key(IF_A, IPPROTO_TCP, "198.18.1.10", 40103, "198.18.1.20", 8443);
	struct zt_ct_val v = val(now - 5 * S, now - 2 * S, ZT_CT_CLOSED, ZT_VERDICT_ALLOW);
	int asked = 0;

	zt_flowexp_set_identity_source(ids_of, &asked);
	v.mtls = ZT_CT_MTLS_NEED | ZT_CT_MTLS_VIA;
	put(&k1, &v);
	put(&k2, &v); /* tunnelled, but the source forgot it */
	v.mtls = ZT_CT_MTLS_NEED;
	put(&k3, &v);
	v.mtls = ZT_CT_MTLS_NEED | ZT_CT_MTLS_VIA | ZT_CT_TLS_BAD;
	v.verdict = ZT_VERDICT_DENY;
	v.reason = ZT_REASON_TLS;
	put(&k4, &v);
	assert_int_equal(zt_flowexp_sweep(x, ct_fd, now, sink, NULL), 4);
	assert_int_equal(n_got, 4);
	assert_int_equal(asked, 2);
	for (int i = 0; i < 4; i++) {
		const struct zt_flow_record *r = &got[i];

		switch (r->source_port) {
		case 40100:
			assert_true(r->mtls);
			assert_string_equal(r->source_spiffe_id, "spiffe://td/ns/a/sa/web");
			assert_string_equal(r->dest_spiffe_id, "spiffe://td/ns/b/sa/db");
			break;
		case 40101:
			assert_true(r->mtls);
			assert_string_equal(r->source_spiffe_id, "");
			break;
		case 40103:
			assert_string_equal(r->drop_reason, "tls-not-1.3");
			/* fall through */
		default:
			assert_false(r->mtls);
			assert_string_equal(r->source_spiffe_id, "");
			assert_string_equal(r->dest_spiffe_id, "");
		}
	}
	zt_flowexp_set_identity_source(NULL, NULL);
	zt_flowexp_close(x);
}

static void test_close_grace(void **state)
{
	struct zt_flowexp *x = open_x();
	uint64_t now = zt_now_boot_ns() + 100 * S;
	struct zt_ct_key k = key(IF_A, IPPROTO_TCP, "198.18.1.10", 40001, "198.18.1.20", 80);
	struct zt_ct_val v = val(now - S, now - S / 10, ZT_CT_CLOSED, ZT_VERDICT_ALLOW);

	put(&k, &v);
	assert_int_equal(zt_flowexp_sweep(x, ct_fd, now, sink, NULL), 0);
	assert_int_equal(zt_flowexp_sweep(x, ct_fd, now + S, sink, NULL), 1);
	zt_flowexp_close(x);
}

static void test_interim_deltas_sum_to_totals(void **state)
{
	struct zt_flowexp *x = open_x();
	uint64_t t0 = zt_now_boot_ns() + 100 * S;
	struct zt_ct_key k = key(IF_A, IPPROTO_UDP, "198.18.1.10", 5353, "198.18.1.30", 53);
	struct zt_ct_val v = val(t0, t0 + 30 * S, ZT_CT_ESTABLISHED, ZT_VERDICT_ALLOW);
	int64_t sent = 0, rcvd = 0;

	put(&k, &v);
	/* 30 s in: active, not due. */
	assert_int_equal(zt_flowexp_sweep(x, ct_fd, t0 + 30 * S, sink, NULL), 0);
	/* 61 s in: interim with everything so far. */
	v.d[0].last_ns = t0 + 61 * S;
	put(&k, &v);
	assert_int_equal(zt_flowexp_sweep(x, ct_fd, t0 + 61 * S, sink, NULL), 1);
	assert_int_equal(got[0].bytes_sent, 1000);
	assert_int_equal(got[0].protocol, 17);
	/* A restart: a new exporter on the same pinned export state. */
	zt_flowexp_close(x);
	x = open_x();
	v.d[0].packets += 5;
	v.d[0].bytes += 500;
	v.d[1].packets += 1;
	v.d[1].bytes += 100;
	v.d[0].last_ns = t0 + 90 * S;
	put(&k, &v);
	assert_int_equal(zt_flowexp_sweep(x, ct_fd, t0 + 90 * S, sink, NULL), 0);
	v.d[0].last_ns = t0 + 122 * S;
	put(&k, &v);
	assert_int_equal(zt_flowexp_sweep(x, ct_fd, t0 + 122 * S, sink, NULL), 1);
	assert_int_equal(got[1].bytes_sent, 500);
	assert_int_equal(got[1].bytes_received, 100);
	assert_int_equal(got[1].start_time_us, got[0].end_time_us);
	/* Idle past the UDP timeout: the final has the rest (nothing), entry gone. */
	v.d[1].packets += 2;
	v.d[1].bytes += 64;
	put(&k, &v);
	assert_int_equal(
		zt_flowexp_sweep(x, ct_fd, t0 + 122 * S + ZT_CT_UDP_TIMEOUT_NS + S, sink, NULL), 1);
	assert_false(present(&k));
	for (size_t i = 0; i < n_got; i++) {
		sent += got[i].bytes_sent;
		rcvd += got[i].bytes_received;
	}
	assert_int_equal(sent, 1500);
	assert_int_equal(rcvd, 964);
	zt_flowexp_close(x);
}

/*
 * The destination side of a flow from endpoint 1 (on IF_A, entry *src, *vs)
 * to endpoint 2 (on IF_B): the same key on IF_B, the entry seen inbound.
 */
static void local_pair(const struct zt_ct_key *src, struct zt_ct_val *vs, struct zt_ct_key *dst,
		       struct zt_ct_val *vd)
{
	vs->peer_ep_id = 2;
	*dst = *src;
	dst->ifindex = IF_B;
	*vd = *vs;
	vd->dir = ZT_DIR_INGRESS;
	vd->ep_id = 2;
	vd->peer_ep_id = 1;
}

static void test_local_pair_once_destination_denial_wins(void **state)
{
	struct zt_flowexp *x = open_x();
	uint64_t now = zt_now_boot_ns() + 100 * S;
	struct zt_ct_key src = key(IF_A, IPPROTO_TCP, "198.18.1.10", 41000, "198.18.1.20", 5432);
	struct zt_ct_key dst;
	struct zt_ct_val vs = val(now - 8 * S, now - 6 * S, ZT_CT_NEW, ZT_VERDICT_ALLOW);
	struct zt_ct_val vd;

	vs.d[1].packets = vs.d[1].bytes = 0;
	local_pair(&src, &vs, &dst, &vd);
	vd.verdict = ZT_VERDICT_DENY;
	vd.reason = ZT_REASON_RULE_DENY;
	vd.rule_id = 9;
	put(&src, &vs);
	put(&dst, &vd);
	/* Denied and quiet for 6 s: one record, from the source side, with the denial. */
	assert_int_equal(zt_flowexp_sweep(x, ct_fd, now, sink, NULL), 1);
	assert_int_equal(n_got, 1);
	assert_string_equal(got[0].verdict, "denied");
	assert_true(got[0].blocked);
	assert_string_equal(got[0].drop_reason, "rule-deny");
	assert_string_equal(got[0].policy, "rule 9 gen 3 reason 2");
	assert_string_equal(got[0].direction, "egress");
	assert_string_equal(got[0].source_workload, "ns/ep1");
	assert_string_equal(got[0].dest_workload, "ns/ep2");
	assert_false(present(&src));
	assert_false(present(&dst));
	zt_flowexp_close(x);
}

static void test_local_pair_allowed_recorded_by_source(void **state)
{
	struct zt_flowexp *x = open_x();
	uint64_t now = zt_now_boot_ns() + 100 * S;
	struct zt_ct_key src = key(IF_A, IPPROTO_TCP, "198.18.1.10", 42000, "198.18.1.20", 8080);
	struct zt_ct_key dst;
	struct zt_ct_val vs = val(now - 8 * S, now - 3 * S, ZT_CT_CLOSED, ZT_VERDICT_ALLOW);
	struct zt_ct_val vd;
	struct zt_flowexp_stats st;

	local_pair(&src, &vs, &dst, &vd);
	put(&dst, &vd);
	put(&src, &vs);
	assert_int_equal(zt_flowexp_sweep(x, ct_fd, now, sink, NULL), 1);
	assert_string_equal(got[0].interface, "lo");
	zt_flowexp_get_stats(x, &st);
	assert_int_equal(st.deduplicated, 1);
	/* Both entries go together at the close timeout, without another record. */
	assert_int_equal(zt_flowexp_sweep(x, ct_fd, now + 11 * S, sink, NULL), 0);
	assert_false(present(&src));
	assert_false(present(&dst));
	zt_flowexp_close(x);
}

/*
 * With a rotation pace (the daemon's), a table that fits one slice is read
 * at most once per pace: in between a call reads nothing, and what became
 * due meanwhile is recorded by the next rotation. A table that needs more
 * than one slice finishes its rotation call after call.
 */
static void test_rotation_paced(void **state)
{
	struct zt_flowexp *x = open_x();
	uint64_t now = zt_now_boot_ns() + 100 * S, ms = 1000000ULL;
	struct zt_ct_key k = key(IF_B, IPPROTO_TCP, "198.18.1.30", 43000, "198.18.0.1", 443);
	struct zt_ct_val v = val(now - 2 * S, now - S, ZT_CT_ESTABLISHED, ZT_VERDICT_ALLOW);
	struct zt_flowexp_stats st;

	zt_flowexp_set_rotation_min(x, ZT_FLOWEXP_ROTATION_MIN_NS);
	v.ep_id = 3;
	put(&k, &v);
	assert_int_equal(zt_flowexp_sweep(x, ct_fd, now, sink, NULL), 0);
	zt_flowexp_get_stats(x, &st);
	assert_int_equal(st.rotations, 1);
	/* Due now (its interface is gone), but the next rotation is not: no read, no record. */
	if_b_alive = false;
	for (uint64_t t = 50 * ms; t < ZT_FLOWEXP_ROTATION_MIN_NS; t += 50 * ms)
		assert_int_equal(zt_flowexp_sweep(x, ct_fd, now + t, sink, NULL), 0);
	zt_flowexp_get_stats(x, &st);
	assert_int_equal(st.rotations, 1);
	assert_true(present(&k));
	assert_int_equal(n_got, 0);
	assert_int_equal(zt_flowexp_sweep(x, ct_fd, now + ZT_FLOWEXP_ROTATION_MIN_NS, sink, NULL),
			 1);
	zt_flowexp_get_stats(x, &st);
	assert_int_equal(st.rotations, 2);
	assert_false(present(&k));

	/* 100 live entries, slices of 64: the rotation goes on at the next call, unpaced. */
	if_b_alive = true;
	assert_int_equal(zt_flowexp_set_slice(x, 64, 64), 0);
	v = val(now - 2 * S, now - S, ZT_CT_ESTABLISHED, ZT_VERDICT_ALLOW);
	for (uint16_t i = 0; i < 100; i++) {
		k = key(IF_A, IPPROTO_TCP, "198.18.1.31", (uint16_t)(40000 + i), "198.18.0.1", 443);
		put(&k, &v);
	}
	now += 2 * ZT_FLOWEXP_ROTATION_MIN_NS;
	assert_int_equal(zt_flowexp_sweep(x, ct_fd, now, sink, NULL), 0);
	assert_int_equal(zt_flowexp_sweep(x, ct_fd, now + ms, sink, NULL), 0);
	zt_flowexp_get_stats(x, &st);
	assert_int_equal(st.rotations, 3);
	assert_int_equal(zt_flowexp_entries(x), 100);

	/*
	 * The table grows 60-fold between two rotations (a fill, a flood's
	 * flows): the rotation under way, past the last count, reads whole
	 * slices, not the last count's paced pieces (1024 a call: 6 calls).
	 */
	assert_int_equal(zt_flowexp_set_slice(x, ZT_FLOWEXP_SLICE, ZT_FLOWEXP_DUE_MAX), 0);
	for (uint16_t i = 0; i < 6000; i++) {
		k = key(IF_A, IPPROTO_TCP, "198.18.1.32", (uint16_t)(20000 + i), "198.18.0.1", 443);
		put(&k, &v);
	}
	now += 2 * ZT_FLOWEXP_ROTATION_MIN_NS;
	for (int i = 0; i < 2; i++)
		zt_flowexp_sweep(x, ct_fd, now + (uint64_t)i * 50 * ms, sink, NULL);
	zt_flowexp_get_stats(x, &st);
	assert_int_equal(st.rotations, 4);
	assert_int_equal(zt_flowexp_entries(x), 6100);
	zt_flowexp_close(x);
}

static void test_interface_gone(void **state)
{
	struct zt_flowexp *x = open_x();
	uint64_t now = zt_now_boot_ns() + 100 * S;
	struct zt_ct_key k = key(IF_B, IPPROTO_TCP, "198.18.1.30", 43000, "198.18.0.1", 443);
	struct zt_ct_val v = val(now - 2 * S, now - S, ZT_CT_ESTABLISHED, ZT_VERDICT_ALLOW);

	v.ep_id = 3;
	put(&k, &v);
	assert_int_equal(zt_flowexp_sweep(x, ct_fd, now, sink, NULL), 0);
	if_b_alive = false;
	assert_int_equal(zt_flowexp_sweep(x, ct_fd, now, sink, NULL), 1);
	assert_false(present(&k));
	/* No sink: entries still age out. */
	put(&k, &v);
	assert_int_equal(zt_flowexp_sweep(x, ct_fd, now, NULL, NULL), 0);
	assert_false(present(&k));
	zt_flowexp_close(x);
}

static void test_short_flow_one_record(void **state)
{
	struct zt_flowexp *x = open_x();
	uint64_t t0 = zt_now_boot_ns() + 100 * S;
	struct zt_ct_key k = key(IF_A, IPPROTO_UDP, "198.18.1.10", 5000, "198.18.1.30", 53);
	struct zt_ct_val v = val(t0, t0 + S, ZT_CT_ESTABLISHED, ZT_VERDICT_ALLOW);

	put(&k, &v);
	/* A one-second exchange that then idles: no interim at 60 s, one final at idle. */
	for (uint64_t t = 2; t <= 62; t += 10)
		zt_flowexp_sweep(x, ct_fd, t0 + t * S, sink, NULL);
	assert_int_equal(n_got, 1);
	assert_int_equal(got[0].bytes_sent, 1000);
	assert_false(present(&k));
	zt_flowexp_close(x);
}

static void test_reused_key_starts_over(void **state)
{
	struct zt_flowexp *x = open_x();
	uint64_t now = zt_now_boot_ns() + 300 * S;
	struct zt_ct_key k = key(IF_A, IPPROTO_TCP, "198.18.1.10", 44000, "198.18.1.20", 80);
	struct zt_ct_val v = val(now - 100 * S, now - 2 * S, ZT_CT_ESTABLISHED, ZT_VERDICT_ALLOW);

	v.d[0].packets = 1000;
	v.d[0].bytes = 100000;
	put(&k, &v);
	v.d[0].last_ns = now - 30 * S;
	put(&k, &v);
	assert_int_equal(zt_flowexp_sweep(x, ct_fd, now - 30 * S, sink, NULL), 1);
	/* The kernel starts a new flow on the same key: smaller counters, new first_ns. */
	v = val(now - 5 * S, now - 2 * S, ZT_CT_CLOSED, ZT_VERDICT_ALLOW);
	put(&k, &v);
	assert_int_equal(zt_flowexp_sweep(x, ct_fd, now, sink, NULL), 1);
	assert_int_equal(got[1].bytes_sent, 1000);
	assert_int_equal(got[1].packets_sent, 10);
	zt_flowexp_close(x);
}

/*
 * A closed TCP flow whose conntrack entry carries the datapath's online
 * sums: its record carries the statistics, and the features the scorer
 * and the feature log compute from it are the hand-computed ones.
 *   out (opener): 4 packets of 60, 60, 200, 1500 bytes; gaps of 1000,
 *     2000, 3000 units of 1.024 us; 1 SYN, 1 FIN, 2 PSH.
 *   in (replies): 3 packets of 60, 100, 100 bytes; gaps of 500 and 1500
 *     units; 1 SYN, 1 FIN, 1 PSH.
 */
static void test_flowstats_reach_features(void **state)
{
	struct zt_flowexp *x = open_x();
	uint64_t now = zt_now_boot_ns() + 400 * S;
	struct zt_ct_key k = key(IF_A, IPPROTO_TCP, "198.18.1.10", 44100, "198.18.1.20", 443);
	struct zt_ct_val v = val(now - 5 * S, now - 2 * S, ZT_CT_CLOSED, ZT_VERDICT_ALLOW);
	char path[160], line[8192], *tok, *save = NULL;
	const struct zt_flow_record *r;
	struct zt_featlog *fl = NULL;
	float x0[ZT_F_COUNT];
	int col = 0, seen = 0;
	char err[256];
	FILE *f;

	v.d[0].packets = 4;
	v.d[0].bytes = 1820;
	v.d[0].size_sq = 3600 + 3600 + 40000 + 2250000;
	v.d[0].size_min = 60;
	v.d[0].size_max = 1500;
	v.d[0].iat_sum = 6000;
	v.d[0].iat_sq = 14000000;
	v.d[0].iat_min = 1000;
	v.d[0].iat_max = 3000;
	v.d[1].packets = 3;
	v.d[1].bytes = 260;
	v.d[1].size_sq = 3600 + 10000 + 10000;
	v.d[1].size_min = 60;
	v.d[1].size_max = 100;
	v.d[1].iat_sum = 2000;
	v.d[1].iat_sq = 2500000;
	v.d[1].iat_min = 500;
	v.d[1].iat_max = 1500;
	v.syn[0] = v.syn[1] = 1;
	v.fin[0] = v.fin[1] = 1;
	v.d[0].psh = 2;
	v.d[1].psh = 1;
	v.hs_done = 1;
	put(&k, &v);
	assert_int_equal(zt_flowexp_sweep(x, ct_fd, now, sink, NULL), 1);
	r = &got[0];
	assert_true(r->has_flowstats);
	assert_non_null(zt_feat_record_stats(r));

	zt_features_compute(r, zt_feat_record_stats(r), NULL, x0);
	assert_float_equal(x0[ZT_F_HAS_FLOWSTATS], 1, 0);
	assert_float_equal(x0[ZT_F_TCP_HANDSHAKE], 1, 0);
	assert_float_equal(x0[ZT_F_BYTES_OUT_RATIO], 0.875, 1e-6);
	/* sizes: mean 1820/4; std sqrt(2297200/4 - 455^2) */
	assert_float_equal(x0[ZT_F_SIZE_MIN_OUT], 60, 0);
	assert_float_equal(x0[ZT_F_SIZE_MEAN_OUT], 455, 1e-3);
	assert_float_equal(x0[ZT_F_SIZE_MAX_OUT], 1500, 0);
	assert_float_equal(x0[ZT_F_SIZE_STD_OUT], 606.03218, 1e-3);
	assert_float_equal(x0[ZT_F_SIZE_MIN_IN], 60, 0);
	assert_float_equal(x0[ZT_F_SIZE_MEAN_IN], 86.666667, 1e-3);
	assert_float_equal(x0[ZT_F_SIZE_MAX_IN], 100, 0);
	assert_float_equal(x0[ZT_F_SIZE_STD_IN], 18.856181, 1e-3);
	/* gaps in us (units x 1.024), features ln(1 + us) */
	assert_float_equal(x0[ZT_F_LOG_IAT_MIN_OUT], 6.9324479, 1e-5); /* 1024 */
	assert_float_equal(x0[ZT_F_LOG_IAT_MEAN_OUT], 7.6251071, 1e-5); /* 2048 */
	assert_float_equal(x0[ZT_F_LOG_IAT_MAX_OUT], 8.0304096, 1e-5); /* 3072 */
	assert_float_equal(x0[ZT_F_LOG_IAT_STD_OUT], 6.7299346, 1e-5); /* 836.09 */
	assert_float_equal(x0[ZT_F_LOG_IAT_MIN_IN], 6.2402758, 1e-5); /* 512 */
	assert_float_equal(x0[ZT_F_LOG_IAT_MEAN_IN], 6.9324479, 1e-5); /* 1024 */
	assert_float_equal(x0[ZT_F_LOG_IAT_MAX_IN], 7.3375877, 1e-5); /* 1536 */
	assert_float_equal(x0[ZT_F_LOG_IAT_STD_IN], 6.2402758, 1e-5); /* 512 */
	assert_float_equal(x0[ZT_F_LOG_SYN_OUT], 0.6931472, 1e-6); /* ln 2 */
	assert_float_equal(x0[ZT_F_LOG_SYN_IN], 0.6931472, 1e-6);
	assert_float_equal(x0[ZT_F_LOG_FIN_OUT], 0.6931472, 1e-6);
	assert_float_equal(x0[ZT_F_LOG_RST_OUT], 0, 0);
	assert_float_equal(x0[ZT_F_LOG_PSH_OUT], 1.0986123, 1e-6); /* ln 3 */
	assert_float_equal(x0[ZT_F_LOG_PSH_IN], 0.6931472, 1e-6);

	/* The feature log (tools/train's rows) gets the same statistics. */
	snprintf(path, sizeof(path), "%s.features.csv", pindir);
	unlink(path);
	assert_int_equal(zt_featlog_open(path, &fl, err, sizeof(err)), 0);
	assert_int_equal(zt_featlog_write(fl, r, 1), 0);
	zt_featlog_close(fl);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(line, sizeof(line), f)); /* the header */
	assert_non_null(fgets(line, sizeof(line), f));
	fclose(f);
	unlink(path);
	/* 6 labelling columns, then the features in schema order. */
	for (tok = strtok_r(line, ",\n", &save); tok; tok = strtok_r(NULL, ",\n", &save), col++) {
		double want = col == 6 + ZT_F_HAS_FLOWSTATS  ? 1 :
			      col == 6 + ZT_F_SIZE_MEAN_OUT  ? 455 :
			      col == 6 + ZT_F_LOG_IAT_MAX_IN ? 7.3375877 :
							       -1;

		if (want >= 0) {
			assert_float_equal(strtod(tok, NULL), want, 1e-5);
			seen++;
		}
	}
	assert_int_equal(seen, 3);
	assert_int_equal(col, 6 + ZT_F_COUNT);
	zt_flowexp_close(x);
}

static size_t ct_entries(void)
{
	struct zt_ct_key k, next;
	void *prev = NULL;
	size_t n = 0;

	while (bpf_map_get_next_key(ct_fd, prev, &next) == 0) {
		k = next;
		prev = &k;
		n++;
	}
	return n;
}

/* A half-open TCP flow towards the pod: SYN in, SYN-ACK out (twice), no ACK. */
static struct zt_ct_val half_val(uint64_t first, uint64_t last, uint8_t state)
{
	struct zt_ct_val v = val(first, last, state, ZT_VERDICT_ALLOW);

	v.dir = ZT_DIR_INGRESS;
	v.d[0].packets = 1;
	v.d[0].bytes = 60;
	v.d[1].packets = state == ZT_CT_SYN_RECV ? 2 : 0;
	v.d[1].bytes = state == ZT_CT_SYN_RECV ? 120 : 0;
	v.flags_seen[0] = ZT_TCP_SYN;
	v.flags_seen[1] = state == ZT_CT_SYN_RECV ? ZT_TCP_SYN | ZT_TCP_ACK : 0;
	return v;
}

/*
 * A spoofed-source SYN flood: 3 sources x 200 ports answered (SYN_RECV),
 * one source's 50 SYNs to a port nobody answered (NEW), and one lone
 * half-open connection. Past the half-open timeout they are recorded as
 * one row per (source, destination port) with aggregate_count flows; the
 * established flow beside them is left alone.
 */
static void test_half_open_flood_is_few_rows(void **state)
{
	struct zt_flowexp *x = open_x();
	uint64_t now = zt_now_boot_ns() + 100 * S;
	uint64_t t0 = now - ZT_CT_TCP_SYN_TIMEOUT_NS - 3 * S;
	struct zt_ct_key est = key(IF_A, IPPROTO_TCP, "198.18.0.1", 50000, "198.18.1.20", 80);
	struct zt_ct_key lone = key(IF_A, IPPROTO_TCP, "198.18.0.9", 40123, "198.18.1.20", 80);
	struct zt_ct_val ev = val(now - 20 * S, now - S, ZT_CT_ESTABLISHED, ZT_VERDICT_ALLOW);
	struct zt_flowexp_stats st;
	int64_t flows = 0, pkts = 0;
	char a[INET_ADDRSTRLEN];

	for (int src = 0; src < 3; src++)
		for (int i = 0; i < 200; i++) {
			char ip[32];
			struct zt_ct_key k;
			struct zt_ct_val v =
				half_val(t0 + (uint64_t)i * 1000, t0 + S, ZT_CT_SYN_RECV);

			snprintf(ip, sizeof(ip), "198.19.7.%d", src + 1);
			k = key(IF_A, IPPROTO_TCP, ip, (uint16_t)(1024 + i), "198.18.1.20", 80);
			put(&k, &v);
		}
	for (int i = 0; i < 50; i++) {
		struct zt_ct_key k = key(IF_A, IPPROTO_TCP, "198.19.7.1", (uint16_t)(3000 + i),
					 "198.18.1.20", 81);
		struct zt_ct_val v = half_val(t0, t0, ZT_CT_NEW);

		put(&k, &v);
	}
	{
		struct zt_ct_val v = half_val(t0, t0 + S, ZT_CT_SYN_RECV);

		put(&lone, &v);
	}
	put(&est, &ev);
	/* Within the half-open timeout: nothing due. */
	assert_int_equal(zt_flowexp_sweep(x, ct_fd, t0 + S + S, sink, NULL), 0);
	assert_int_equal(ct_entries(), 652);

	assert_int_equal(zt_flowexp_sweep(x, ct_fd, now, sink, NULL), 5);
	assert_int_equal(n_got, 5);
	assert_int_equal(ct_entries(), 1); /* the established flow */
	assert_true(present(&est));
	for (size_t i = 0; i < n_got; i++) {
		const struct zt_flow_record *r = &got[i];

		flows += r->aggregate_count;
		pkts += r->packet_count;
		assert_int_equal(r->protocol, 6);
		assert_string_equal(r->direction, "ingress");
		assert_int_equal(r->kind, ZT_FLOW_KIND_FLOW);
		inet_ntop(AF_INET, r->source_ip, a, sizeof(a));
		if (r->aggregate_count == 1) {
			/* The lone one is an ordinary record, its port and all. */
			assert_string_equal(a, "198.18.0.9");
			assert_true(r->present & ZT_FR_HAS_SPORT);
			assert_int_equal(r->source_port, 40123);
			assert_int_equal(r->packets_sent, 1);
			assert_int_equal(r->packets_received, 2);
			continue;
		}
		assert_false(r->present & ZT_FR_HAS_SPORT);
		assert_int_equal(r->source_port, 0);
		assert_true(r->present & ZT_FR_HAS_DPORT);
		if (r->dest_port == 81) {
			assert_string_equal(a, "198.19.7.1");
			assert_int_equal(r->aggregate_count, 50);
			assert_int_equal(r->packets_sent, 50);
			assert_int_equal(r->packets_received, 0);
			assert_int_equal(r->tcp_flags, ZT_TCP_SYN);
		} else {
			assert_int_equal(r->dest_port, 80);
			assert_int_equal(r->aggregate_count, 200);
			assert_int_equal(r->packets_sent, 200);
			assert_int_equal(r->packets_received, 400);
			assert_int_equal(r->bytes_received, 200 * 120);
			assert_int_equal(r->tcp_flags, ZT_TCP_SYN | ZT_TCP_ACK);
			/* From the first SYN of the group to its last packet. */
			assert_int_equal(r->duration_ms, 1000);
		}
		assert_string_equal(r->verdict, "allowed");
	}
	assert_int_equal(flows, 651);
	assert_int_equal(pkts, 600 * 3 + 50 + 3);
	zt_flowexp_get_stats(x, &st);
	assert_int_equal(st.halfopen_flows, 651);
	assert_int_equal(st.halfopen_rows, 5);
	assert_int_equal(st.entries_deleted, 651);
	zt_flowexp_close(x);
}

/* Denied half-open flows (SYNs a policy drops) are merged the same way. */
static void test_denied_syns_merged(void **state)
{
	struct zt_flowexp *x = open_x();
	uint64_t now = zt_now_boot_ns() + 100 * S;

	for (int i = 0; i < 100; i++) {
		struct zt_ct_key k = key(IF_A, IPPROTO_TCP, "198.19.8.1", (uint16_t)(2000 + i),
					 "198.18.1.20", 22);
		struct zt_ct_val v = half_val(now - 7 * S, now - 6 * S, ZT_CT_NEW);

		v.verdict = ZT_VERDICT_DENY;
		v.reason = ZT_REASON_NO_RULE;
		put(&k, &v);
	}
	assert_int_equal(zt_flowexp_sweep(x, ct_fd, now, sink, NULL), 1);
	assert_int_equal(got[0].aggregate_count, 100);
	assert_string_equal(got[0].verdict, "denied");
	assert_true(got[0].blocked);
	assert_string_equal(got[0].drop_reason, "no-rule");
	assert_int_equal(ct_entries(), 0);
	zt_flowexp_close(x);
}

/*
 * A table larger than a slice: each call looks at no more than a slice
 * and acts on no more than due_max entries, the rotation goes on where the
 * last call stopped, and every expired entry is recorded exactly once. The
 * count of entries is known once a rotation completes.
 */
static void test_sliced_rotation(void **state)
{
	struct zt_flowexp *x = open_x();
	uint64_t now = zt_now_boot_ns() + 100 * S;
	struct zt_flowexp_stats st;
	size_t calls = 0, live = 0;
	int64_t recorded = 0;

	assert_int_equal(zt_flowexp_set_slice(x, 256, 32), 0);
	assert_int_equal(zt_flowexp_set_slice(x, 8, 32), -EINVAL);
	for (int i = 0; i < 3000; i++) {
		char ip[32];
		struct zt_ct_key k;
		struct zt_ct_val v;

		snprintf(ip, sizeof(ip), "198.18.%d.%d", 10 + i / 250, i % 250 + 1);
		k = key(IF_A, IPPROTO_UDP, ip, (uint16_t)(5000 + i), "198.18.1.30", 53);
		/* One in three idle past the UDP timeout, the rest live. */
		v = val(now - 100 * S, i % 3 ? now - S : now - ZT_CT_UDP_TIMEOUT_NS - S,
			ZT_CT_ESTABLISHED, ZT_VERDICT_ALLOW);
		v.first_ns = now - 2 * S; /* not a long flow */
		if (i % 3 == 0)
			v.first_ns = v.d[0].last_ns - S;
		live += i % 3 != 0;
		put(&k, &v);
	}
	assert_int_equal(zt_flowexp_entries(x), 0);
	do {
		size_t before = n_got;
		int r = zt_flowexp_sweep(x, ct_fd, now, sink, NULL);

		assert_true(r >= 0 && r <= 32);
		assert_int_equal((size_t)r, n_got - before);
		recorded += r;
		zt_flowexp_get_stats(x, &st);
		calls++;
	} while (st.rotations == 0 && calls < 1000);
	assert_int_equal(st.rotations, 1);
	assert_true(st.slice_max <= 256);
	/* 3000 entries, 256 a call at most: at least 12 calls. */
	assert_true(calls >= 12);
	assert_int_equal(recorded, 1000);
	assert_int_equal(st.entries, 3000);
	assert_int_equal(zt_flowexp_entries(x), 3000);
	assert_int_equal(ct_entries(), live);
	/* The next rotation counts what is left, and records nothing again. */
	do {
		assert_int_equal(zt_flowexp_sweep(x, ct_fd, now, sink, NULL), 0);
		zt_flowexp_get_stats(x, &st);
	} while (st.rotations == 1);
	assert_int_equal(zt_flowexp_entries(x), live);
	zt_flowexp_close(x);
}

/* ---- the worker: the sink off the loop thread ---- */

/* A sink that blocks until the gate opens (at most 5 s), as an fsync on a slow disk. */
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static bool gate_open, sink_entered, sink_done;
static pthread_t sink_thread, prep_thread;
static int sink_calls, prep_calls;

static void slow_sink(void *ctx, const struct zt_flow_record *r, size_t n)
{
	struct timespec dl;

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 5;
	pthread_mutex_lock(&gate_mu);
	sink_thread = pthread_self();
	sink_entered = true;
	sink_calls++;
	pthread_cond_broadcast(&gate_cv);
	while (!gate_open && pthread_cond_timedwait(&gate_cv, &gate_mu, &dl) == 0)
		;
	pthread_mutex_unlock(&gate_mu);
	sink(ctx, r, n);
	pthread_mutex_lock(&gate_mu);
	sink_done = true;
	pthread_mutex_unlock(&gate_mu);
}

static void prep_score(void *ctx, struct zt_flow_record *r, size_t n)
{
	prep_thread = pthread_self();
	prep_calls++;
	for (size_t i = 0; i < n; i++)
		r[i].anomaly_score = 0.25f;
}

static void *open_gate_later(void *arg)
{
	struct timespec d = { 0, 200 * 1000000L };

	nanosleep(&d, NULL);
	pthread_mutex_lock(&gate_mu);
	gate_open = true;
	pthread_cond_broadcast(&gate_cv);
	pthread_mutex_unlock(&gate_mu);
	return NULL;
}

/*
 * With the worker, the sweep returns while the sink is still blocked (the
 * loop is not held by the spool's fsync), a sweep in the meantime records
 * nothing twice, and a close while the sink blocks (SIGTERM mid-sweep)
 * waits for it: every record reaches the sink with its values and the
 * prep's score, and flow_export says they were recorded, so an exporter
 * opened on the same pins records none of them again.
 */
static void test_worker_off_loop_nothing_lost(void **state)
{
	struct zt_flowexp *x = open_x();
	uint64_t now = zt_now_boot_ns() + 200 * S;
	struct zt_flowexp_stats st;
	pthread_t opener;
	struct zt_ct_key ki[40], kl[20];
	bool entered, done;
	int idle_seen = 0, long_seen = 0;

	gate_open = sink_entered = sink_done = false;
	sink_calls = prep_calls = 0;
	assert_int_equal(zt_flowexp_start_worker(x, prep_score, NULL), 0);
	for (int i = 0; i < 40; i++) {
		/* Idle past the UDP timeout: a final record, then deleted. */
		struct zt_ct_val v = val(now - 100 * S, now - ZT_CT_UDP_TIMEOUT_NS - S,
					 ZT_CT_ESTABLISHED, ZT_VERDICT_ALLOW);

		ki[i] = key(IF_A, IPPROTO_UDP, "198.18.2.10", (uint16_t)(6000 + i), "198.18.1.30",
			    53);
		put(&ki[i], &v);
	}
	for (int i = 0; i < 20; i++) {
		/* Live for 90 s: an interim record, then marked in flow_export. */
		struct zt_ct_val v =
			val(now - 90 * S, now - S, ZT_CT_ESTABLISHED, ZT_VERDICT_ALLOW);

		kl[i] = key(IF_A, IPPROTO_TCP, "198.18.2.11", (uint16_t)(7000 + i), "198.18.1.30",
			    443);
		put(&kl[i], &v);
	}
	assert_int_equal(zt_flowexp_sweep(x, ct_fd, now, slow_sink, NULL), 60);
	pthread_mutex_lock(&gate_mu);
	{
		struct timespec dl;

		clock_gettime(CLOCK_REALTIME, &dl);
		dl.tv_sec += 5;
		while (!sink_entered && pthread_cond_timedwait(&gate_cv, &gate_mu, &dl) == 0)
			;
	}
	entered = sink_entered;
	done = sink_done;
	pthread_mutex_unlock(&gate_mu);
	/* The sink runs on another thread and has not returned: the sweep did not wait for it. */
	assert_true(entered);
	assert_false(done);
	assert_false(pthread_equal(sink_thread, pthread_self()));
	assert_int_equal(prep_calls, 1);
	assert_true(pthread_equal(prep_thread, pthread_self()));
	/* Nothing deleted before the sink returned; a sweep meanwhile waits its turn. */
	assert_true(present(&ki[0]));
	assert_int_equal(zt_flowexp_sweep(x, ct_fd, now, slow_sink, NULL), 0);
	zt_flowexp_get_stats(x, &st);
	assert_int_equal(st.deferred, 1);
	assert_int_equal(sink_calls, 1);
	/* Stopped mid-sweep: close waits for the sink and the map updates. */
	assert_int_equal(pthread_create(&opener, NULL, open_gate_later, NULL), 0);
	zt_flowexp_close(x);
	pthread_join(opener, NULL);
	assert_true(sink_done);
	assert_int_equal(n_got, 60);
	for (size_t i = 0; i < n_got; i++) {
		assert_true(got[i].anomaly_score == 0.25f);
		assert_int_equal(got[i].packets_sent, 10);
		assert_int_equal(got[i].bytes_sent, 1000);
		assert_int_equal(got[i].bytes_received, 800);
		if (got[i].protocol == IPPROTO_UDP && got[i].dest_port == 53)
			idle_seen++;
		else if (got[i].protocol == IPPROTO_TCP && got[i].dest_port == 443)
			long_seen++;
	}
	assert_int_equal(idle_seen, 40);
	assert_int_equal(long_seen, 20);
	for (int i = 0; i < 40; i++)
		assert_false(present(&ki[i]));
	for (int i = 0; i < 20; i++)
		assert_true(present(&kl[i]));
	/* A restart on the same pins: the interim records are not made again. */
	x = open_x();
	assert_int_equal(zt_flowexp_sweep(x, ct_fd, now + S, sink, NULL), 0);
	assert_int_equal(n_got, 60);
	zt_flowexp_close(x);
}

/* ---- drop aggregation ---- */

static struct zt_ev_xdp_drop drop_ev(const char *src, uint16_t dport, uint64_t ts, uint32_t rep)
{
	struct zt_ev_xdp_drop e = { .ifindex = IF_A,
				    .reason = ZT_XR_BLOCKLIST,
				    .family = 4,
				    .proto = IPPROTO_UDP,
				    .dport = dport,
				    .pkt_len = 100,
				    .represents = rep };

	e.hdr.type = ZT_EV_XDP_DROP;
	e.hdr.len = sizeof(e);
	e.hdr.ts_ns = ts;
	inet_pton(AF_INET, src, e.saddr);
	inet_pton(AF_INET, "198.18.0.2", e.daddr);
	return e;
}

static void test_flood_is_one_row(void **state)
{
	struct zt_dropagg *a = NULL;
	uint64_t t0 = 1000 * S;
	struct zt_dropagg_stats st;

	assert_int_equal(zt_dropagg_new(10 * S, 0, "node-t", &a), 0);
	for (uint32_t i = 0; i < 1000000; i++) {
		struct zt_ev_xdp_drop e = drop_ev("198.18.0.1", 53, t0 + i, i % 7 == 0 ? 3 : 1);

		zt_dropagg_add(a, &e);
	}
	/* Interval not over: nothing yet. */
	assert_int_equal(zt_dropagg_flush(a, t0 + 5 * S, false, sink, NULL), 0);
	assert_int_equal(zt_dropagg_flush(a, t0 + 10 * S, false, sink, NULL), 1);
	assert_int_equal(n_got, 1);
	/* 142858 events stand for 3 drops, the rest for 1. */
	assert_int_equal(got[0].aggregate_count, 1000000 + 2 * 142858);
	assert_int_equal(got[0].packet_count, got[0].aggregate_count);
	assert_int_equal(got[0].bytes_sent, 100 * got[0].aggregate_count);
	assert_int_equal(got[0].kind, ZT_FLOW_KIND_XDP_DROP_AGG);
	assert_int_equal(got[0].dest_port, 53);
	assert_int_equal(got[0].protocol, 17);
	assert_string_equal(got[0].verdict, "dropped");
	assert_true(got[0].blocked);
	assert_true(!strncmp(got[0].drop_reason, "blocklist:", 10));
	/* The next interval starts empty. */
	assert_int_equal(zt_dropagg_flush(a, t0 + 30 * S, true, sink, NULL), 0);
	zt_dropagg_get_stats(a, &st);
	assert_int_equal(st.events, 1000000);
	assert_int_equal(st.rows, 1);
	zt_dropagg_free(a);
}

static void test_key_bound_folds(void **state)
{
	struct zt_dropagg *a = NULL;
	struct zt_dropagg_stats st;
	int64_t total = 0;
	char ip[32];

	assert_int_equal(zt_dropagg_new(10 * S, 100, "node-t", &a), 0);
	for (int i = 0; i < 1000; i++) {
		struct zt_ev_xdp_drop e;

		snprintf(ip, sizeof(ip), "198.18.%d.%d", i / 250, i % 250 + 1);
		e = drop_ev(ip, (uint16_t)(1000 + i % 3), 1000 * S + (uint64_t)i, 1);
		zt_dropagg_add(a, &e);
	}
	assert_int_equal(zt_dropagg_flush(a, 0, true, sink, NULL), 101);
	for (size_t i = 0; i < n_got; i++)
		total += got[i].aggregate_count;
	assert_int_equal(total, 1000);
	assert_true(strstr(got[100].drop_reason, "other sources") != NULL);
	zt_dropagg_get_stats(a, &st);
	assert_int_equal(st.folded, 900);
	zt_dropagg_free(a);
}

/* The drop rows' sink (the daemon's: spool write and fsync) off the flushing thread. */
static pthread_mutex_t slow_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t slow_cv = PTHREAD_COND_INITIALIZER;
static bool slow_open;
static pthread_t slow_thr, prep_thr;
static size_t n_prep;

static void stalled_sink(void *ctx, const struct zt_flow_record *r, size_t n)
{
	struct timespec until;

	/* A stalled disk: held until the test lets it go (at most 1 s). */
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 1;
	pthread_mutex_lock(&slow_mu);
	while (!slow_open)
		if (pthread_cond_timedwait(&slow_cv, &slow_mu, &until))
			break;
	pthread_mutex_unlock(&slow_mu);
	slow_thr = pthread_self();
	sink(ctx, r, n);
}

static void count_prep(void *ctx, struct zt_flow_record *r, size_t n)
{
	prep_thr = pthread_self();
	n_prep += n;
	for (size_t i = 0; i < n; i++)
		r[i].anomaly_score = 0.5f; /* what the sink gets is what prep left */
}

static void test_drop_rows_written_off_the_loop(void **state)
{
	struct zt_dropagg *a = NULL;
	struct zt_dropagg_stats st;
	uint64_t t0 = 1000 * S, t;
	struct zt_ev_xdp_drop e;
	int64_t total = 0;

	slow_open = false;
	n_prep = 0;
	assert_int_equal(zt_dropagg_new(10 * S, 0, "node-t", &a), 0);
	assert_int_equal(zt_dropagg_flush_bg(a, t0, true), -EINVAL); /* no worker yet */
	assert_int_equal(zt_dropagg_start_worker(a, count_prep, NULL, stalled_sink, NULL), 0);
	e = drop_ev("198.18.0.1", 53, t0, 1);
	zt_dropagg_add(a, &e);
	e = drop_ev("198.18.0.9", 53, t0 + 1, 4);
	zt_dropagg_add(a, &e);
	/* The interval is over: two rows handed over, and the caller does not wait for the sink. */
	t = zt_now_mono_ns();
	assert_int_equal(zt_dropagg_flush_bg(a, t0 + 10 * S, false), 2);
	assert_true(zt_now_mono_ns() - t < 200 * 1000000ULL);
	assert_int_equal(n_prep, 2);
	assert_true(pthread_equal(prep_thr, pthread_self()));
	/* The worker is held: the next interval's row waits for it, not lost. */
	e = drop_ev("198.18.0.1", 53, t0 + 11 * S, 2);
	zt_dropagg_add(a, &e);
	t = zt_now_mono_ns();
	assert_int_equal(zt_dropagg_flush_bg(a, t0 + 12 * S, true), 1);
	assert_true(zt_now_mono_ns() - t < 200 * 1000000ULL);
	assert_int_equal(n_got, 0);
	pthread_mutex_lock(&slow_mu);
	slow_open = true;
	pthread_cond_broadcast(&slow_cv);
	pthread_mutex_unlock(&slow_mu);
	/* Stop: everything handed over is written first. */
	zt_dropagg_drain(a);
	zt_dropagg_get_stats(a, &st);
	assert_int_equal(st.handed, 3);
	assert_int_equal(st.written, 3);
	zt_dropagg_free(a);
	assert_int_equal(n_got, 3);
	for (size_t i = 0; i < n_got; i++) {
		total += got[i].aggregate_count;
		assert_true(got[i].anomaly_score == 0.5f);
	}
	assert_int_equal(total, 1 + 4 + 2);
	assert_false(pthread_equal(slow_thr, pthread_self()));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_closed_tcp_final_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mtls_identities, setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_grace, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recorded_closed_not_reread, setup, teardown),
		cmocka_unit_test_setup_teardown(test_interim_deltas_sum_to_totals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_local_pair_once_destination_denial_wins, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_local_pair_allowed_recorded_by_source, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_interface_gone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_short_flow_one_record, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reused_key_starts_over, setup, teardown),
		cmocka_unit_test_setup_teardown(test_half_open_flood_is_few_rows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_denied_syns_merged, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sliced_rotation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_worker_off_loop_nothing_lost, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flood_is_one_row, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rotation_paced, setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_bound_folds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drop_rows_written_off_the_loop, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_flowstats_reach_features, setup, teardown),
	};

	zt_test_private_mounts();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
