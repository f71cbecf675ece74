// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The XDP guard's blocklist in tc_endpoint through BPF_PROG_TEST_RUN: a
 * flow either of whose addresses is blocked is denied with reason blocked
 * (a pod that attacks, a peer that reaches the pod without crossing an
 * uplink), whatever the policy says; a flow already there is looked at
 * again once the published generation changes, and only then; a blocked
 * flow gets its policy verdict back when its entry expires; the allowlist
 * wins; a policy change keeps the block. The maps are written as the
 * daemon writes them (entry first, then the prefix set with a new gen).
 *
 * Like test_tc_endpoint, it runs in a network namespace of its own with a
 * veth pair whose ifindex stands for the pod's. Needs root.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#include "ztagent.h"
#include "pktgen.h"
#include "tc_endpoint.skel.h"
#include "tcpod.h"

#define POD4 "198.18.0.10"
#define PEER4 "198.18.1.20"
#define OTHER4 "198.18.1.30"
#define POD6 "2001:db8:0:1::10"
#define PEER6 "2001:db8:0:2::20"

#define POD_ID 1000u
#define PEER_ID 2000u
#define POD_EP 7u
#define PEER_EP 8u
#define TCP_SYN 0x02
#define TCP_ACK 0x10
#define MAX_EVENTS 64

static __u32 if_pod;

struct env {
	struct tcpod p;
	struct zt_ev_policy pol[MAX_EVENTS];
	int n_pol, bad;
	__u32 bl_gen; /* the last published generation */
	__u32 v4_blocked, v6_blocked; /* host entries written, per family */
};

static int on_event(void *ctx, void *data, size_t size)
{
	struct env *e = ctx;
	const struct zt_event_hdr *h = data;

	if (h->type == ZT_EV_POLICY && size == sizeof(struct zt_ev_policy) && e->n_pol < MAX_EVENTS)
		memcpy(&e->pol[e->n_pol++], data, size);
	else if (h->type != ZT_EV_IOC)
		e->bad++;
	return 0;
}

/* The prefix set as the daemon publishes it: host lengths only, the filter off. */
static void publish(struct env *e, bool allow4)
{
	struct zt_prefix_set ps = { .allow_v4_used = allow4, .gen = ++e->bl_gen };
	__u32 zero = 0;

	if (e->v4_blocked) {
		ps.v4_count = 1;
		ps.v4_lens[0] = 32;
	}
	if (e->v6_blocked) {
		ps.v6_count = 1;
		ps.v6_lens[0] = 128;
	}
	assert_int_equal(
		bpf_map_update_elem(bpf_map__fd(e->p.skel->maps.blocklist_prefixes), &zero, &ps, 0),
		0);
}

/* CLOCK_BOOTTIME now, as bpf_ktime_get_boot_ns reads it. */
static __u64 boot_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (__u64)ts.tv_sec * 1000000000ULL + (__u64)ts.tv_nsec;
}

/* A host entry written (not published: see publish). expires_ns 0: never. */
static void block_host(struct env *e, const char *a, __u64 expires_ns)
{
	struct zt_block_entry v = { .expires_ns = expires_ns,
				    .reason = ZT_BR_SCAN,
				    .source = ZT_BS_DETECTOR };
	__u8 b[16];

	tcpod_addr(a, b);
	if (strchr(a, ':')) {
		struct zt_ip6_key k = { .prefixlen = 128 };

		memcpy(k.addr, b, 16);
		v.prefixlen = 128;
		assert_int_equal(
			bpf_map_update_elem(bpf_map__fd(e->p.skel->maps.blocklist_v6), &k, &v, 0),
			0);
		e->v6_blocked++;
	} else {
		struct zt_ip4_key k = { .prefixlen = 32 };

		memcpy(k.addr, b, 4);
		v.prefixlen = 32;
		assert_int_equal(
			bpf_map_update_elem(bpf_map__fd(e->p.skel->maps.blocklist_v4), &k, &v, 0),
			0);
		e->v4_blocked++;
	}
}

/* A pod that nothing isolates (every flow allowed by policy), in generation 1. */
static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));

	if (!e || tcpod_open(&e->p, if_pod, POD_EP, POD_ID, on_event, e) < 0)
		return -1;
	*state = e;
	tcpod_ipc_add(&e->p, 1, POD4, 32, POD_ID, POD_EP);
	tcpod_ipc_add(&e->p, 1, PEER4, 32, PEER_ID, PEER_EP);
	tcpod_ipc_add(&e->p, 1, POD6, 128, POD_ID, POD_EP);
	tcpod_set_gen(&e->p, 1);
	publish(e, false);
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;

	tcpod_close(&e->p);
	free(e);
	return 0;
}

/* The pod's connection sport -> dst:dport: a packet from the pod, and its peer's answer. */
static int out_pkt(struct env *e, const char *dst, int sport, __u8 flags)
{
	return tcpod_run(&e->p, e->p.skel->progs.tc_from_pod, strchr(dst, ':') ? POD6 : POD4, dst,
			 IPPROTO_TCP, sport, 8080, flags);
}

static int back_pkt(struct env *e, const char *dst, int sport, __u8 flags)
{
	return tcpod_run(&e->p, e->p.skel->progs.tc_to_pod, dst, strchr(dst, ':') ? POD6 : POD4,
			 IPPROTO_TCP, 8080, sport, flags);
}

static __u64 tc_stat(struct env *e, __u32 slot)
{
	return tcpod_counter(&e->p, e->p.skel->maps.tc_stats, slot);
}

static const struct zt_ev_policy *last_pol(struct env *e)
{
	assert_true(e->n_pol > 0);
	return &e->pol[e->n_pol - 1];
}

/* A pod that attacks: its flows, new and established, both ways. */
static void test_pod_blocked(void **state)
{
	struct env *e = *state;
	int n;

	assert_int_equal(out_pkt(e, PEER4, 41000, TCP_SYN), TC_ACT_OK);
	assert_int_equal(back_pkt(e, PEER4, 41000, TCP_SYN | TCP_ACK), TC_ACT_OK);
	block_host(e, POD4, 0);
	publish(e, false);
	/* A new flow: denied, reported with reason blocked. */
	n = e->n_pol;
	assert_int_equal(out_pkt(e, OTHER4, 41001, TCP_SYN), TC_ACT_SHOT);
	assert_int_equal(e->n_pol, n + 1);
	assert_int_equal(last_pol(e)->verdict, ZT_VERDICT_DENY);
	assert_int_equal(last_pol(e)->reason, ZT_REASON_BLOCKED);
	assert_int_equal(last_pol(e)->revoked, 0);
	/* The flow that was there: revoked at its next packet, either way. */
	assert_int_equal(out_pkt(e, PEER4, 41000, TCP_ACK), TC_ACT_SHOT);
	assert_int_equal(e->n_pol, n + 2);
	assert_int_equal(last_pol(e)->reason, ZT_REASON_BLOCKED);
	assert_int_equal(last_pol(e)->revoked, 1);
	assert_int_equal(back_pkt(e, PEER4, 41000, TCP_ACK), TC_ACT_SHOT);
	assert_int_equal(e->n_pol, n + 2); /* no event per packet */
	assert_int_equal(tc_stat(e, ZT_TCS_BLOCKED), 3);
	assert_int_equal(tc_stat(e, ZT_TCS_DENY_NEW) + tc_stat(e, ZT_TCS_DENY_EST), 0);
	assert_int_equal(e->bad, 0);
}

/* A peer that reaches the pod without crossing an uplink (a tunnel, another pod). */
static void test_peer_blocked(void **state)
{
	struct env *e = *state;

	block_host(e, PEER4, 0);
	publish(e, false);
	assert_int_equal(back_pkt(e, PEER4, 42000, TCP_SYN), TC_ACT_SHOT);
	assert_int_equal(last_pol(e)->reason, ZT_REASON_BLOCKED);
	/* And the pod's own flow to it. */
	assert_int_equal(out_pkt(e, PEER4, 42001, TCP_SYN), TC_ACT_SHOT);
	assert_int_equal(out_pkt(e, OTHER4, 42002, TCP_SYN), TC_ACT_OK);
	/* IPv6 the same way. */
	block_host(e, PEER6, 0);
	publish(e, false);
	assert_int_equal(out_pkt(e, PEER6, 42003, TCP_SYN), TC_ACT_SHOT);
	assert_int_equal(last_pol(e)->reason, ZT_REASON_BLOCKED);
	assert_int_equal(last_pol(e)->family, 6);
}

/* An established flow is looked at again when the generation moves, and only then. */
static void test_generation_gates(void **state)
{
	struct env *e = *state;

	/* Another /32 on the list: the length is published. */
	block_host(e, OTHER4, 0);
	publish(e, false);
	assert_int_equal(out_pkt(e, PEER4, 43000, TCP_SYN), TC_ACT_OK);
	block_host(e, PEER4, 0); /* written, the generation not yet moved */
	assert_int_equal(out_pkt(e, PEER4, 43000, TCP_ACK), TC_ACT_OK);
	/* A new flow looks whatever the generation. */
	assert_int_equal(out_pkt(e, PEER4, 43001, TCP_SYN), TC_ACT_SHOT);
	publish(e, false);
	assert_int_equal(out_pkt(e, PEER4, 43000, TCP_ACK), TC_ACT_SHOT);
	assert_int_equal(last_pol(e)->revoked, 1);
}

/* The entry expires: the blocked flow has its policy verdict again at its next packet. */
static void test_expiry_restores(void **state)
{
	struct env *e = *state;
	struct zt_ip4_key k = { .prefixlen = 32 };
	struct zt_block_entry v;
	__u8 b[16];
	int n;

	block_host(e, PEER4, boot_ns() + 3600ULL * 1000000000ULL);
	publish(e, false);
	assert_int_equal(out_pkt(e, PEER4, 44000, TCP_SYN), TC_ACT_SHOT);
	/* The same entry, now expired (no publish: an expiry is no change). */
	tcpod_addr(PEER4, b);
	memcpy(k.addr, b, 4);
	assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(e->p.skel->maps.blocklist_v4), &k, &v), 0);
	v.expires_ns = boot_ns() - 1;
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(e->p.skel->maps.blocklist_v4), &k, &v, 0),
			 0);
	n = e->n_pol;
	assert_int_equal(back_pkt(e, PEER4, 44000, TCP_SYN | TCP_ACK), TC_ACT_OK);
	assert_int_equal(e->n_pol, n + 1);
	assert_int_equal(last_pol(e)->verdict, ZT_VERDICT_ALLOW);
	assert_int_equal(last_pol(e)->reason, ZT_REASON_NOT_ISOLATED);
	assert_int_equal(out_pkt(e, PEER4, 44000, TCP_ACK), TC_ACT_OK);
	assert_int_equal(e->n_pol, n + 1);
}

static void test_allowlist_wins(void **state)
{
	struct env *e = *state;
	struct zt_ip4_key k = { .prefixlen = 24 };
	struct zt_allow_entry a = { 0 };
	__u8 b[16];

	block_host(e, PEER4, 0);
	publish(e, false);
	assert_int_equal(out_pkt(e, PEER4, 45000, TCP_SYN), TC_ACT_SHOT);
	tcpod_addr(PEER4, b);
	memcpy(k.addr, b, 3);
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(e->p.skel->maps.allowlist_v4), &k, &a, 0),
			 0);
	publish(e, true);
	/* The denied flow is looked at again at its next packet and passes. */
	assert_int_equal(out_pkt(e, PEER4, 45000, TCP_ACK), TC_ACT_OK);
	assert_int_equal(out_pkt(e, PEER4, 45001, TCP_SYN), TC_ACT_OK);
}

static void test_policy_change_keeps_block(void **state)
{
	struct env *e = *state;

	assert_int_equal(out_pkt(e, PEER4, 46000, TCP_SYN), TC_ACT_OK);
	block_host(e, POD4, 0);
	publish(e, false);
	assert_int_equal(out_pkt(e, PEER4, 46000, TCP_ACK), TC_ACT_SHOT);
	tcpod_set_gen(&e->p, 2);
	assert_int_equal(out_pkt(e, PEER4, 46000, TCP_ACK), TC_ACT_SHOT);
	assert_int_equal(back_pkt(e, PEER4, 46000, TCP_ACK), TC_ACT_SHOT);
	/* IPv6: the pod's other address is not blocked, then is. */
	assert_int_equal(out_pkt(e, PEER6, 46001, TCP_SYN), TC_ACT_OK);
	block_host(e, POD6, 0);
	publish(e, false);
	assert_int_equal(out_pkt(e, PEER6, 46001, TCP_ACK), TC_ACT_SHOT);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_pod_blocked),	 T(test_peer_blocked),	 T(test_generation_gates),
		T(test_expiry_restores), T(test_allowlist_wins), T(test_policy_change_keeps_block),
	};

	if (unshare(CLONE_NEWNET) < 0) {
		fprintf(stderr, "test_tc_block: unshare(CLONE_NEWNET): %s\n", strerror(errno));
		return 1;
	}
	if (system("ip link add ztt0 type veth peer name ztt1 >/dev/null 2>&1") != 0) {
		fprintf(stderr, "test_tc_block: cannot create a veth pair\n");
		return 1;
	}
	if_pod = if_nametoindex("ztt0");
	libbpf_set_print(NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
