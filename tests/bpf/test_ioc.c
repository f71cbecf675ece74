// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Threat-intel destinations in tc_endpoint (bpf/lib/ioc.h) through
 * BPF_PROG_TEST_RUN: a pod's new flow to a listed host or prefix is
 * dropped (action block: verdict deny, reason ioc, a ZT_EV_IOC record, the
 * ioc_stats counter) or only reported (action alert); a port entry matches
 * that port only; the trie is looked at only while ioc_state says so;
 * packets towards the pod are never checked; a policy change does not let
 * a blocked flow through. The maps are written as the daemon writes them.
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
#define C2_4 "198.19.66.6" /* a listed host */
#define NET_4 "198.19.77.0" /* a listed /24 */
#define IN_NET4 "198.19.77.9"
#define CLEAN4 "198.19.200.1"
#define POD6 "2001:db8:0:1::10"
#define C2_6 "2001:db8:bad::66"

#define POD_ID 1000u
#define PEER_ID 2000u
#define POD_EP 7u
#define PEER_EP 8u
#define TCP_SYN 0x02
#define MAX_EVENTS 32

static __u32 if_pod;

struct env {
	struct tcpod p;
	struct zt_ev_ioc ioc[MAX_EVENTS];
	struct zt_ev_policy pol[MAX_EVENTS];
	int n_ioc, n_pol, bad;
};

static int on_event(void *ctx, void *data, size_t size)
{
	struct env *e = ctx;
	const struct zt_event_hdr *h = data;

	if (h->type == ZT_EV_IOC && size == sizeof(struct zt_ev_ioc) && e->n_ioc < MAX_EVENTS)
		memcpy(&e->ioc[e->n_ioc++], data, size);
	else if (h->type == ZT_EV_POLICY && size == sizeof(struct zt_ev_policy) &&
		 e->n_pol < MAX_EVENTS)
		memcpy(&e->pol[e->n_pol++], data, size);
	else
		e->bad++;
	return 0;
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
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;

	tcpod_close(&e->p);
	free(e);
	return 0;
}

/* An IOC entry as the daemon writes it: hosts in the hash map, prefixes in the trie. */
static void ioc_add(struct env *e, const char *a, int plen, __u32 feed_id, __u8 action, __u16 port)
{
	struct zt_ioc_val v = {
		.feed_id = feed_id, .prefixlen = (__u32)plen, .port = port, .action = action
	};
	bool v6 = strchr(a, ':') != NULL, host = plen == (v6 ? 128 : 32);
	int fd;

	if (v6) {
		struct zt_ip6_key k = { .prefixlen = (__u32)plen };

		tcpod_addr(a, k.addr);
		fd = host ? bpf_map__fd(e->p.skel->maps.ioc_host_v6) :
			    bpf_map__fd(e->p.skel->maps.ioc_lpm_v6);
		assert_int_equal(bpf_map_update_elem(fd, &k, &v, 0), 0);
	} else {
		struct zt_ip4_key k = { .prefixlen = (__u32)plen };
		__u8 b[16];

		tcpod_addr(a, b);
		memcpy(k.addr, b, 4);
		fd = host ? bpf_map__fd(e->p.skel->maps.ioc_host_v4) :
			    bpf_map__fd(e->p.skel->maps.ioc_lpm_v4);
		assert_int_equal(bpf_map_update_elem(fd, &k, &v, 0), 0);
	}
}

static void ioc_state(struct env *e, __u32 h4, __u32 h6, __u32 l4, __u32 l6)
{
	struct zt_ioc_state st = { h4, h6, l4, l6 };
	__u32 zero = 0;

	assert_int_equal(bpf_map_update_elem(bpf_map__fd(e->p.skel->maps.ioc_state), &zero, &st, 0),
			 0);
}

/* One packet (TCP: a SYN) through prog; its verdict. */
static int run(struct env *e, struct bpf_program *prog, const char *src, const char *dst, int proto,
	       int sport, int dport)
{
	return tcpod_run(&e->p, prog, src, dst, proto, sport, dport, TCP_SYN);
}

static int from_pod(struct env *e, const char *dst, int proto, int dport)
{
	return run(e, e->p.skel->progs.tc_from_pod, strchr(dst, ':') ? POD6 : POD4, dst, proto,
		   40000 + e->n_pol, dport);
}

static __u64 ioc_stat(struct env *e, __u32 slot)
{
	return tcpod_counter(&e->p, e->p.skel->maps.ioc_stats, slot);
}

static void test_block_host(void **state)
{
	struct env *e = *state;
	struct zt_ct_key k = { .ifindex = if_pod, .family = 4, .proto = IPPROTO_TCP };
	struct zt_ct_val v;
	__u8 a[16];

	assert_int_equal(from_pod(e, C2_4, IPPROTO_TCP, 443), TC_ACT_OK); /* not listed yet */
	ioc_add(e, C2_4, 32, 3, ZT_IOC_BLOCK, 0);
	ioc_state(e, 1, 0, 0, 0);
	assert_int_equal(from_pod(e, C2_4, IPPROTO_TCP, 443), TC_ACT_SHOT);
	assert_int_equal(from_pod(e, CLEAN4, IPPROTO_TCP, 443), TC_ACT_OK);
	assert_int_equal(e->bad, 0);
	assert_int_equal(e->n_ioc, 1);
	assert_int_equal(e->ioc[0].feed_id, 3);
	assert_int_equal(e->ioc[0].prefixlen, 32);
	assert_int_equal(e->ioc[0].action, ZT_IOC_BLOCK);
	assert_int_equal(e->ioc[0].dropped, 1);
	assert_int_equal(e->ioc[0].ep_id, POD_EP);
	assert_int_equal(e->ioc[0].local_id, POD_ID);
	assert_int_equal(e->ioc[0].dport, 443);
	tcpod_addr(C2_4, a);
	assert_memory_equal(e->ioc[0].daddr, a, 16);
	/* The policy event says why the flow was denied. */
	assert_int_equal(e->pol[1].verdict, ZT_VERDICT_DENY);
	assert_int_equal(e->pol[1].reason, ZT_REASON_IOC);
	assert_int_equal(ioc_stat(e, ZT_IOCS_BLOCKED), 1);
	assert_int_equal(ioc_stat(e, ZT_IOCS_ALERTED), 0);
	/* Conntrack keeps the denial: the next packet drops without another record. */
	memcpy(k.saddr, (tcpod_addr(POD4, a), a), 16);
	tcpod_addr(C2_4, k.daddr);
	k.sport = e->ioc[0].sport;
	k.dport = 443;
	assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(e->p.skel->maps.conntrack), &k, &v), 0);
	assert_int_equal(v.verdict, ZT_VERDICT_DENY);
	assert_int_equal(v.reason, ZT_REASON_IOC);
}

static void test_alert_only(void **state)
{
	struct env *e = *state;

	ioc_add(e, C2_4, 32, 5, ZT_IOC_ALERT, 0);
	ioc_state(e, 1, 0, 0, 0);
	assert_int_equal(from_pod(e, C2_4, IPPROTO_UDP, 53), TC_ACT_OK);
	assert_int_equal(e->n_ioc, 1);
	assert_int_equal(e->ioc[0].action, ZT_IOC_ALERT);
	assert_int_equal(e->ioc[0].dropped, 0);
	assert_int_equal(e->pol[0].verdict, ZT_VERDICT_ALLOW);
	assert_int_equal(ioc_stat(e, ZT_IOCS_ALERTED), 1);
	assert_int_equal(ioc_stat(e, ZT_IOCS_BLOCKED), 0);
}

static void test_prefix_in_trie_gated(void **state)
{
	struct env *e = *state;

	ioc_add(e, NET_4, 24, 1, ZT_IOC_BLOCK, 0);
	/* The trie holds it but ioc_state says it is empty: not looked at. */
	ioc_state(e, 0, 0, 0, 0);
	assert_int_equal(from_pod(e, IN_NET4, IPPROTO_TCP, 80), TC_ACT_OK);
	ioc_state(e, 0, 0, 1, 0);
	assert_int_equal(from_pod(e, IN_NET4, IPPROTO_TCP, 81), TC_ACT_SHOT);
	assert_int_equal(e->n_ioc, 1);
	assert_int_equal(e->ioc[0].prefixlen, 24);
	/* A host entry beside it: the host map first, the trie for the rest. */
	ioc_add(e, C2_4, 32, 2, ZT_IOC_ALERT, 0);
	ioc_state(e, 1, 0, 1, 0);
	assert_int_equal(from_pod(e, C2_4, IPPROTO_TCP, 80), TC_ACT_OK);
	assert_int_equal(from_pod(e, IN_NET4, IPPROTO_TCP, 82), TC_ACT_SHOT);
	assert_int_equal(e->n_ioc, 3);
}

static void test_port_entry(void **state)
{
	struct env *e = *state;

	ioc_add(e, C2_4, 32, 1, ZT_IOC_BLOCK, 8443);
	ioc_state(e, 1, 0, 0, 0);
	assert_int_equal(from_pod(e, C2_4, IPPROTO_TCP, 443), TC_ACT_OK);
	assert_int_equal(run(e, e->p.skel->progs.tc_from_pod, POD4, C2_4, IPPROTO_ICMP, 8, 0),
			 TC_ACT_OK);
	assert_int_equal(from_pod(e, C2_4, IPPROTO_TCP, 8443), TC_ACT_SHOT);
	assert_int_equal(e->n_ioc, 1);
	assert_int_equal(e->ioc[0].ioc_port, 8443);
}

static void test_ipv6_and_ingress_not_checked(void **state)
{
	struct env *e = *state;

	ioc_add(e, C2_6, 128, 4, ZT_IOC_BLOCK, 0);
	ioc_add(e, C2_4, 32, 4, ZT_IOC_BLOCK, 0);
	ioc_state(e, 1, 1, 0, 0);
	assert_int_equal(from_pod(e, C2_6, IPPROTO_TCP, 443), TC_ACT_SHOT);
	assert_int_equal(e->n_ioc, 1);
	assert_int_equal(e->ioc[0].family, 6);
	/* Towards the pod (its ingress): the source is the XDP guard's business. */
	assert_int_equal(run(e, e->p.skel->progs.tc_to_pod, C2_4, POD4, IPPROTO_TCP, 443, 8080),
			 TC_ACT_OK);
	assert_int_equal(e->n_ioc, 1);
}

static void test_policy_change_keeps_block(void **state)
{
	struct env *e = *state;
	struct bpf_program *out = e->p.skel->progs.tc_from_pod;

	ioc_add(e, C2_4, 32, 1, ZT_IOC_BLOCK, 0);
	ioc_state(e, 1, 0, 0, 0);
	assert_int_equal(tcpod_run(&e->p, out, POD4, C2_4, IPPROTO_TCP, 41000, 443, TCP_SYN),
			 TC_ACT_SHOT);
	/* A new generation (still nothing isolates the pod) re-judges the flow. */
	tcpod_ipc_add(&e->p, 0, POD4, 32, POD_ID, POD_EP);
	tcpod_set_gen(&e->p, 2);
	/* ACK: a packet of the same flow */
	assert_int_equal(tcpod_run(&e->p, out, POD4, C2_4, IPPROTO_TCP, 41000, 443, 0x10),
			 TC_ACT_SHOT);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_block_host),
		T(test_alert_only),
		T(test_prefix_in_trie_gated),
		T(test_port_entry),
		T(test_ipv6_and_ingress_not_checked),
		T(test_policy_change_keeps_block),
	};

	if (unshare(CLONE_NEWNET) < 0) {
		fprintf(stderr, "test_ioc: unshare(CLONE_NEWNET): %s\n", strerror(errno));
		return 1;
	}
	if (system("ip link add ztt0 type veth peer name ztt1 >/dev/null 2>&1") != 0) {
		fprintf(stderr, "test_ioc: cannot create a veth pair\n");
		return 1;
	}
	if_pod = if_nametoindex("ztt0");
	libbpf_set_print(NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
