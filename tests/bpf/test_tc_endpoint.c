// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tc_endpoint through BPF_PROG_TEST_RUN. Each test loads a fresh skeleton
 * (no map pinned: every pin path is cleared before load), writes the maps
 * as the daemon would (endpoints, ipcache, policy, isolation, generation)
 * with the structs of include/ztagent.h, runs crafted packets through
 * tc_from_pod (the pod's egress) or tc_to_pod (its ingress), and checks the
 * TC verdict, the tc_stats slot that moved, the conntrack entry and every
 * ring-buffer record.
 *
 * skb->ifindex: BPF_PROG_TEST_RUN takes __sk_buff.ifindex from ctx_in and
 * attaches the skb to that device, which must exist in the caller's
 * network namespace (else -ENODEV; 0 or 1 mean loopback). So the test runs
 * in a network namespace of its own with two veth pairs whose ifindexes
 * stand for endpoints; no packet is ever sent there, and the namespace goes
 * away with the process.
 *
 * Needs root (CAP_BPF + CAP_SYS_ADMIN + CAP_NET_ADMIN).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <math.h>
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <sys/socket.h>
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
#include "tap.h"
#include "detect/features.h"
#include "guard/activity.h"
#include "tc_endpoint.skel.h"

/* An endpoint (pod) and its peers; all in 198.18.0.0/15 or 2001:db8::/32. */
#define POD4 "198.18.0.10"
#define PEER4 "198.18.1.20" /* another endpoint, in the ipcache */
#define WORLD4 "198.19.200.1" /* in no ipcache entry but 0/0 */
#define POD6 "2001:db8:0:1::10"
#define PEER6 "2001:db8:0:2::20"
#define WORLD6 "2001:db8:ffff::1"

#define POD_ID 1000u
#define PEER_ID 2000u
#define OTHER_ID 3000u
#define CIDR_ID1 (ZT_ID_FIRST_CIDR + 1)
#define CIDR_ID2 (ZT_ID_FIRST_CIDR + 2)
#define POD_EP 7u
#define PEER_EP 8u
#define POD2_EP 9u

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_PSH 0x08
#define TCP_ACK 0x10

#define MAX_EVENTS 64

/* Conntrack, events and verdict counters count IP bytes: the frame minus its Ethernet header. */
#define ip_len(p) ((p).len - 14)

static __u32 if_pod, if_pod2, if_unreg; /* endpoints' veth ifindexes and one not registered */

struct env {
	struct tc_endpoint *skel;
	struct ring_buffer *rb;
	struct zt_ev_policy ev[MAX_EVENTS];
	int n_ev;
	int bad_size;
	int n_cpus;
	struct zt_ev_capture cap[MAX_EVENTS];
	int n_cap;
	struct zt_ev_probe_result res[MAX_EVENTS];
	int n_res;
	struct zt_ev_session ses[MAX_EVENTS];
	int n_ses;
	struct zt_ev_refused sshr[MAX_EVENTS];
	int n_sshr;
	struct zt_ev_activity act[MAX_EVENTS];
	int n_act;
};

/* A record into arr (MAX_EVENTS of size bytes), counted in *n even past the end. */
static void keep(void *arr, int *n, const void *data, size_t size)
{
	if (*n < MAX_EVENTS)
		memcpy((char *)arr + (size_t)*n * size, data, size);
	(*n)++;
}

static int on_event(void *ctx, void *data, size_t size)
{
	struct env *e = ctx;
	__u16 type = size >= sizeof(struct zt_event_hdr) ? ((struct zt_event_hdr *)data)->type : 0;

	if (size == sizeof(struct zt_ev_capture) && type == ZT_EV_CAPTURE)
		keep(e->cap, &e->n_cap, data, size);
	else if (size == sizeof(struct zt_ev_probe_result) && type == ZT_EV_PROBE_RESULT)
		keep(e->res, &e->n_res, data, size);
	else if (size == sizeof(struct zt_ev_session) && type == ZT_EV_SESSION)
		keep(e->ses, &e->n_ses, data, size);
	else if (size == sizeof(struct zt_ev_refused) && type == ZT_EV_REFUSED)
		keep(e->sshr, &e->n_sshr, data, size);
	else if (size == sizeof(struct zt_ev_activity) && type == ZT_EV_SRC_ACTIVITY)
		keep(e->act, &e->n_act, data, size);
	else if (size == sizeof(struct zt_ev_policy))
		keep(e->ev, &e->n_ev, data, size);
	else
		e->bad_size++;
	return 0;
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	struct bpf_map *map;

	if (!e)
		return -1;
	e->n_cpus = libbpf_num_possible_cpus();
	e->skel = tc_endpoint__open();
	if (!e->skel)
		goto fail;
	bpf_object__for_each_map (map, e->skel->obj) {
		if (bpf_map__set_pin_path(map, NULL))
			goto fail;
	}
	bpf_map__set_max_entries(e->skel->maps.conntrack, 1024);
	bpf_map__set_max_entries(e->skel->maps.policy, 1024);
	bpf_map__set_max_entries(e->skel->maps.events, 1 << 16);
	if (tc_endpoint__load(e->skel))
		goto fail;
	e->rb = ring_buffer__new(bpf_map__fd(e->skel->maps.events), on_event, e, NULL);
	if (!e->rb)
		goto fail;
	*state = e;
	return 0;
fail:
	tc_endpoint__destroy(e->skel);
	free(e);
	return -1;
}

static int teardown(void **state)
{
	struct env *e = *state;

	ring_buffer__free(e->rb);
	tc_endpoint__destroy(e->skel);
	free(e);
	return 0;
}

/* ---- map writers ---- */

static void set_gen(struct env *e, __u32 gen)
{
	struct zt_pol_state st = { .gen = gen };
	__u32 zero = 0;

	assert_int_equal(bpf_map_update_elem(bpf_map__fd(e->skel->maps.pol_state), &zero, &st, 0),
			 0);
}

static void ep_add(struct env *e, __u32 ifindex, __u32 ep_id, __u32 identity)
{
	struct zt_endpoint_info v = { .ep_id = ep_id, .identity = identity };

	assert_int_equal(bpf_map_update_elem(bpf_map__fd(e->skel->maps.endpoints), &ifindex, &v, 0),
			 0);
}

/* cidr "a.b.c.d/n" or "x::/n" into the ipcache of its family, in slot, with every field. */
static void ipc_add_val(struct env *e, __u8 slot, const char *cidr, struct zt_ipcache_val v)
{
	char buf[64];
	char *slash;
	int plen;

	snprintf(buf, sizeof(buf), "%s", cidr);
	slash = strchr(buf, '/');
	assert_non_null(slash);
	*slash = 0;
	plen = atoi(slash + 1);
	if (strchr(buf, ':')) {
		struct zt_ipcache_key6 k = { .prefixlen = 8 + plen, .slot = slot };

		assert_int_equal(inet_pton(AF_INET6, buf, k.addr), 1);
		assert_int_equal(
			bpf_map_update_elem(bpf_map__fd(e->skel->maps.ipcache_v6), &k, &v, 0), 0);
	} else {
		struct zt_ipcache_key4 k = { .prefixlen = 8 + plen, .slot = slot };

		assert_int_equal(inet_pton(AF_INET, buf, k.addr), 1);
		assert_int_equal(
			bpf_map_update_elem(bpf_map__fd(e->skel->maps.ipcache_v4), &k, &v, 0), 0);
	}
}

static void ipc_add(struct env *e, __u8 slot, const char *cidr, __u32 identity, __u32 ep_id)
{
	ipc_add_val(e, slot, cidr, (struct zt_ipcache_val){ .identity = identity, .ep_id = ep_id });
}

/* The usual ipcache: pod and peer endpoints (both families), nothing else. */
static void ipc_std(struct env *e, __u8 slot)
{
	ipc_add(e, slot, POD4 "/32", POD_ID, POD_EP);
	ipc_add(e, slot, PEER4 "/32", PEER_ID, PEER_EP);
	ipc_add(e, slot, POD6 "/128", POD_ID, POD_EP);
	ipc_add(e, slot, PEER6 "/128", PEER_ID, PEER_EP);
}

struct pol {
	__u8 slot, dir;
	__u32 local, peer;
	__u8 proto; /* 0 with port_bits < 0: any protocol */
	__u16 port;
	int port_bits; /* 16: one port; 0: every port of proto; -1: any protocol */
	__u8 verdict;
	__u32 rule;
	__u8 audit_verdict;
	__u32 audit_rule;
};

static void pol_add(struct env *e, struct pol p)
{
	struct zt_pol_val v = { .rule_id = p.rule,
				.audit_rule_id = p.audit_rule,
				.verdict = p.verdict,
				.audit_verdict = p.audit_verdict };
	struct zt_pol_key k;
	__u32 plen = p.port_bits < 0 ? ZT_POL_PLEN_ANY_PROTO : ZT_POL_PLEN_PROTO + p.port_bits;

	/* Host bits of a prefix must be zero, as the compiler writes them. */
	if (p.port_bits >= 0 && p.port_bits < 16)
		p.port &= (__u16)(0xffffu << (16 - p.port_bits));
	if (p.port_bits < 0) {
		p.proto = 0;
		p.port = 0;
	}
	zt_pol_key_fill(&k, plen, p.slot, p.dir, p.local, p.peer, p.proto, p.port);
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(e->skel->maps.policy), &k, &v, 0), 0);
}

/* Allow (enforce and audit alike) one port of one protocol. */
static void allow_port(struct env *e, __u8 slot, __u8 dir, __u32 peer, __u8 proto, __u16 port,
		       __u32 rule)
{
	pol_add(e, (struct pol){ .slot = slot,
				 .dir = dir,
				 .local = POD_ID,
				 .peer = peer,
				 .proto = proto,
				 .port = port,
				 .port_bits = 16,
				 .verdict = ZT_VERDICT_ALLOW,
				 .rule = rule,
				 .audit_verdict = ZT_VERDICT_ALLOW,
				 .audit_rule = rule });
}

static void iso_add(struct env *e, __u8 slot, __u8 dir, __u32 identity, __u8 isolated,
		    __u8 audit_isolated, __u8 by_default, __u32 rule, __u32 audit_rule)
{
	struct zt_iso_key k = { .slot = slot, .dir = dir, .identity = identity };
	struct zt_iso_val v = { .isolated = isolated,
				.audit_isolated = audit_isolated,
				.by_default = by_default,
				.rule_id = rule,
				.audit_rule_id = audit_rule };

	assert_int_equal(bpf_map_update_elem(bpf_map__fd(e->skel->maps.pol_isolation), &k, &v, 0),
			 0);
}

/* Isolated both ways in slot (enforce and audit), by a policy with rule id 900. */
#define ISO_RULE 900u
static void isolate(struct env *e, __u8 slot)
{
	iso_add(e, slot, ZT_DIR_INGRESS, POD_ID, 1, 1, 0, ISO_RULE, ISO_RULE);
	iso_add(e, slot, ZT_DIR_EGRESS, POD_ID, 1, 1, 0, ISO_RULE, ISO_RULE);
}

/* The usual start: pod registered on if_pod, ipcache in slot 1, gen 1, isolated. */
static void std_setup(struct env *e)
{
	ep_add(e, if_pod, POD_EP, POD_ID);
	ipc_std(e, 1);
	isolate(e, 1);
	set_gen(e, 1);
}

/* ---- packets ---- */

struct pspec {
	int family;
	int proto;
	const char *src, *dst;
	int sport, dport; /* ICMP: type, code */
	int flags; /* TCP flags; ICMP: echo identifier */
	int payload;
};

static struct pg_pkt *mk(struct pg_pkt *p, struct pspec s)
{
	struct pg_spec g = { .family = (uint8_t)s.family,
			     .src = s.src,
			     .dst = s.dst,
			     .proto = (uint8_t)s.proto,
			     .sport = (uint16_t)s.sport,
			     .dport = (uint16_t)s.dport,
			     .payload = (uint16_t)s.payload };

	assert_int_equal(pg_build(&g, p), 0);
	if (s.proto == IPPROTO_TCP)
		p->buf[p->off[PG_L4] + 13] = (uint8_t)s.flags;
	else if (s.proto == IPPROTO_ICMP || s.proto == IPPROTO_ICMPV6)
		pg_put16(p->buf + p->off[PG_L4] + 4, (uint16_t)s.flags);
	return p;
}

static struct pg_pkt *tcp4(struct pg_pkt *p, const char *src, const char *dst, int sport, int dport,
			   int flags)
{
	return mk(p, (struct pspec){ 4, IPPROTO_TCP, src, dst, sport, dport, flags, 10 });
}

static struct pg_pkt *udp4(struct pg_pkt *p, const char *src, const char *dst, int sport, int dport)
{
	return mk(p, (struct pspec){ 4, IPPROTO_UDP, src, dst, sport, dport, 0, 20 });
}

static struct pg_pkt *tcp6(struct pg_pkt *p, const char *src, const char *dst, int sport, int dport,
			   int flags)
{
	return mk(p, (struct pspec){ 6, IPPROTO_TCP, src, dst, sport, dport, flags, 10 });
}

static int run_on(struct env *e, struct bpf_program *prog, __u32 ifindex, const struct pg_pkt *p)
{
	struct __sk_buff ctx = { .ifindex = ifindex };
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = p->buf, .data_size_in = (__u32)p->len,
		    .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .repeat = 1);
	int err;

	err = bpf_prog_test_run_opts(bpf_program__fd(prog), &o);
	assert_int_equal(err, 0);
	ring_buffer__consume(e->rb);
	return (int)o.retval;
}

/* Packets the pod sends (its egress) and packets sent to it (its ingress). */
static int from_pod(struct env *e, const struct pg_pkt *p)
{
	return run_on(e, e->skel->progs.tc_from_pod, if_pod, p);
}

static int to_pod(struct env *e, const struct pg_pkt *p)
{
	return run_on(e, e->skel->progs.tc_to_pod, if_pod, p);
}

/* ---- readers ---- */

static struct zt_counter stat_of(struct env *e, __u32 slot)
{
	struct zt_counter vals[e->n_cpus], sum = { 0, 0 };
	int i;

	assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(e->skel->maps.tc_stats), &slot, vals), 0);
	for (i = 0; i < e->n_cpus; i++) {
		sum.packets += vals[i].packets;
		sum.bytes += vals[i].bytes;
	}
	return sum;
}

/* Exactly these packets counted under each slot (expect[slot] packets). */
static void check_stats(struct env *e, const __u64 expect[ZT_TCS_MAX])
{
	__u32 s;

	for (s = 0; s < ZT_TCS_MAX; s++) {
		struct zt_counter c = stat_of(e, s);

		if (c.packets != expect[s])
			fail_msg("tc_stats[%u]: %llu packets, expected %llu", s,
				 (unsigned long long)c.packets, (unsigned long long)expect[s]);
	}
}

static __u64 evstat(struct env *e, __u32 slot)
{
	__u64 vals[e->n_cpus], sum = 0;
	int i;

	assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(e->skel->maps.event_stats), &slot, vals),
			 0);
	for (i = 0; i < e->n_cpus; i++)
		sum += vals[i];
	return sum;
}

static void addr_of(const char *s, __u8 out[16])
{
	memset(out, 0, 16);
	if (strchr(s, ':'))
		assert_int_equal(inet_pton(AF_INET6, s, out), 1);
	else
		assert_int_equal(inet_pton(AF_INET, s, out), 1);
}

static struct zt_ct_key ct_key(__u32 ifindex, int proto, const char *src, const char *dst,
			       __u16 sport, __u16 dport)
{
	struct zt_ct_key k;

	memset(&k, 0, sizeof(k));
	k.ifindex = ifindex;
	k.family = strchr(src, ':') ? 6 : 4;
	k.proto = (__u8)proto;
	addr_of(src, k.saddr);
	addr_of(dst, k.daddr);
	k.sport = sport;
	k.dport = dport;
	return k;
}

static int ct_get(struct env *e, struct zt_ct_key k, struct zt_ct_val *v)
{
	return bpf_map_lookup_elem(bpf_map__fd(e->skel->maps.conntrack), &k, v);
}

/* An entry last used at t, either way (a direction with no packet yet stays so). */
static void ct_idle_since(struct zt_ct_val *v, __u64 t)
{
	v->d[0].last_ns = t;
	if (v->d[1].last_ns)
		v->d[1].last_ns = t;
}

static int ct_count(struct env *e)
{
	struct zt_ct_key k, next;
	int n = 0, fd = bpf_map__fd(e->skel->maps.conntrack);
	void *prev = NULL;

	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		k = next;
		prev = &k;
		n++;
	}
	return n;
}

/* What an event is expected to say; the tuple is checked separately. */
struct ev_want {
	__u8 verdict, audit, reason, dir, revoked;
	__u32 rule, peer_id, gen;
};

static const struct zt_ev_policy *ev_check(struct env *e, int i, struct ev_want w)
{
	const struct zt_ev_policy *ev;

	assert_int_equal(e->bad_size, 0);
	if (i >= e->n_ev)
		fail_msg("event %d missing: %d events", i, e->n_ev);
	ev = &e->ev[i];
	assert_int_equal(ev->hdr.type, ZT_EV_POLICY);
	assert_int_equal(ev->hdr.len, sizeof(*ev));
	assert_int_equal(ev->verdict, w.verdict);
	assert_int_equal(ev->audit, w.audit);
	assert_int_equal(ev->reason, w.reason);
	assert_int_equal(ev->dir, w.dir);
	assert_int_equal(ev->revoked, w.revoked);
	assert_int_equal(ev->rule_id, w.rule);
	assert_int_equal(ev->peer_id, w.peer_id);
	assert_int_equal(ev->gen, w.gen);
	assert_int_equal(ev->local_id, POD_ID);
	assert_int_equal(ev->_pad, 0);
	return ev;
}

static void ev_tuple(const struct zt_ev_policy *ev, int proto, const char *src, const char *dst,
		     __u16 sport, __u16 dport)
{
	__u8 a[16];

	assert_int_equal(ev->proto, proto);
	assert_int_equal(ev->family, strchr(src, ':') ? 6 : 4);
	addr_of(src, a);
	assert_memory_equal(ev->saddr, a, 16);
	addr_of(dst, a);
	assert_memory_equal(ev->daddr, a, 16);
	assert_int_equal(ev->sport, sport);
	assert_int_equal(ev->dport, dport);
}

/* ---- tests: verdicts ---- */

static void test_allow_rule_egress(void **state)
{
	struct env *e = *state;
	const struct zt_ev_policy *ev;
	struct zt_ct_val v;
	struct pg_pkt p;
	__u64 st[ZT_TCS_MAX] = { [ZT_TCS_ALLOW_NEW] = 1 };

	std_setup(e);
	allow_port(e, 1, ZT_DIR_EGRESS, PEER_ID, IPPROTO_TCP, 443, 11);
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 40000, 443, TCP_SYN)), TC_ACT_OK);
	assert_int_equal(e->n_ev, 1);
	ev = ev_check(e, 0,
		      (struct ev_want){ ZT_VERDICT_ALLOW, 0, ZT_REASON_RULE_ALLOW, ZT_DIR_EGRESS, 0,
					11, PEER_ID, 1 });
	ev_tuple(ev, IPPROTO_TCP, POD4, PEER4, 40000, 443);
	assert_int_equal(ev->ifindex, if_pod);
	assert_int_equal(ev->ep_id, POD_EP);
	assert_int_equal(ev->peer_ep_id, PEER_EP);
	assert_int_equal(ev->tcp_flags, TCP_SYN);
	assert_int_equal(ev->pkt_len, ip_len(p));
	assert_int_equal(ct_get(e, ct_key(if_pod, IPPROTO_TCP, POD4, PEER4, 40000, 443), &v), 0);
	assert_int_equal(v.verdict, ZT_VERDICT_ALLOW);
	assert_int_equal(v.dir, ZT_DIR_EGRESS);
	assert_int_equal(v.rule_id, 11);
	assert_int_equal(v.gen, 1);
	assert_int_equal(v.peer_id, PEER_ID);
	assert_int_equal(v.peer_ep_id, PEER_EP);
	assert_int_equal(v.ep_id, POD_EP);
	check_stats(e, st);
	assert_int_equal(stat_of(e, ZT_TCS_ALLOW_NEW).bytes, ip_len(p));
	assert_int_equal(evstat(e, ZT_EVS_EMITTED), 1);
}

static void test_deny_no_rule(void **state)
{
	struct env *e = *state;
	const struct zt_ev_policy *ev;
	struct zt_ct_val v;
	struct pg_pkt p;
	__u64 st[ZT_TCS_MAX] = { [ZT_TCS_DENY_NEW] = 1 };

	std_setup(e);
	allow_port(e, 1, ZT_DIR_EGRESS, PEER_ID, IPPROTO_TCP, 443, 11);
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 40000, 80, TCP_SYN)), TC_ACT_SHOT);
	assert_int_equal(e->n_ev, 1);
	ev = ev_check(e, 0,
		      (struct ev_want){ ZT_VERDICT_DENY, 0, ZT_REASON_NO_RULE, ZT_DIR_EGRESS, 0,
					ISO_RULE, PEER_ID, 1 });
	ev_tuple(ev, IPPROTO_TCP, POD4, PEER4, 40000, 80);
	assert_int_equal(ct_get(e, ct_key(if_pod, IPPROTO_TCP, POD4, PEER4, 40000, 80), &v), 0);
	assert_int_equal(v.verdict, ZT_VERDICT_DENY);
	assert_int_equal(v.reason, ZT_REASON_NO_RULE);
	check_stats(e, st);
}

static void test_default_deny(void **state)
{
	struct env *e = *state;
	struct pg_pkt p;

	ep_add(e, if_pod, POD_EP, POD_ID);
	ipc_std(e, 1);
	iso_add(e, 1, ZT_DIR_INGRESS, POD_ID, 1, 1, 1, 0, 0);
	set_gen(e, 1);
	assert_int_equal(to_pod(e, udp4(&p, PEER4, POD4, 5000, 53)), TC_ACT_SHOT);
	ev_check(e, 0,
		 (struct ev_want){ ZT_VERDICT_DENY, 0, ZT_REASON_DEFAULT_DENY, ZT_DIR_INGRESS, 0, 0,
				   PEER_ID, 1 });
	/* Egress has no isolation entry: not isolated. */
	assert_int_equal(from_pod(e, udp4(&p, POD4, PEER4, 5000, 53)), TC_ACT_OK);
	ev_check(e, 1,
		 (struct ev_want){ ZT_VERDICT_ALLOW, 0, ZT_REASON_NOT_ISOLATED, ZT_DIR_EGRESS, 0, 0,
				   PEER_ID, 1 });
	assert_int_equal(e->n_ev, 2);
}

static void test_not_isolated_allows(void **state)
{
	struct env *e = *state;
	struct pg_pkt p;
	__u64 st[ZT_TCS_MAX] = { [ZT_TCS_ALLOW_NEW] = 2 };

	ep_add(e, if_pod, POD_EP, POD_ID);
	ipc_std(e, 1);
	/* Isolation of another identity and of the other slot does not count. */
	iso_add(e, 1, ZT_DIR_INGRESS, OTHER_ID, 1, 1, 0, 5, 5);
	iso_add(e, 0, ZT_DIR_INGRESS, POD_ID, 1, 1, 0, 5, 5);
	set_gen(e, 1);
	assert_int_equal(to_pod(e, tcp4(&p, PEER4, POD4, 1234, 22, TCP_SYN)), TC_ACT_OK);
	ev_check(e, 0,
		 (struct ev_want){ ZT_VERDICT_ALLOW, 0, ZT_REASON_NOT_ISOLATED, ZT_DIR_INGRESS, 0,
				   0, PEER_ID, 1 });
	assert_int_equal(from_pod(e, tcp4(&p, POD4, WORLD4, 1234, 22, TCP_SYN)), TC_ACT_OK);
	check_stats(e, st);
}

static void test_ingress_allow_peer_is_source(void **state)
{
	struct env *e = *state;
	const struct zt_ev_policy *ev;
	struct pg_pkt p;

	std_setup(e);
	allow_port(e, 1, ZT_DIR_INGRESS, PEER_ID, IPPROTO_TCP, 8080, 21);
	/* The egress rule of the same port does not allow ingress. */
	allow_port(e, 1, ZT_DIR_EGRESS, PEER_ID, IPPROTO_TCP, 9090, 22);
	assert_int_equal(to_pod(e, tcp4(&p, PEER4, POD4, 33333, 8080, TCP_SYN)), TC_ACT_OK);
	ev = ev_check(e, 0,
		      (struct ev_want){ ZT_VERDICT_ALLOW, 0, ZT_REASON_RULE_ALLOW, ZT_DIR_INGRESS,
					0, 21, PEER_ID, 1 });
	ev_tuple(ev, IPPROTO_TCP, PEER4, POD4, 33333, 8080);
	assert_int_equal(ev->peer_ep_id, PEER_EP);
	assert_int_equal(to_pod(e, tcp4(&p, PEER4, POD4, 33333, 9090, TCP_SYN)), TC_ACT_SHOT);
	/* Source port does not matter: 8080 as the source is not allowed. */
	assert_int_equal(to_pod(e, tcp4(&p, PEER4, POD4, 8080, 1111, TCP_SYN)), TC_ACT_SHOT);
	assert_int_equal(e->n_ev, 3);
}

/*
 * SCTP is told by its ports, as Kubernetes policies name them: a rule for
 * one port allows that port's association, not another's; the entry's key
 * has the ports, and the answer from the port passes as its reply.
 */
static void test_sctp_ports(void **state)
{
	struct env *e = *state;
	struct zt_ct_val v;
	struct pg_pkt p;

	std_setup(e);
	allow_port(e, 1, ZT_DIR_INGRESS, PEER_ID, IPPROTO_SCTP, 38412, 23);
	assert_int_equal(to_pod(e, mk(&p, (struct pspec){ 4, IPPROTO_SCTP, PEER4, POD4, 2905, 38412,
							  0, 20 })),
			 TC_ACT_OK);
	ev_check(e, 0,
		 (struct ev_want){ ZT_VERDICT_ALLOW, 0, ZT_REASON_RULE_ALLOW, ZT_DIR_INGRESS, 0, 23,
				   PEER_ID, 1 });
	assert_int_equal(ct_get(e, ct_key(if_pod, IPPROTO_SCTP, PEER4, POD4, 2905, 38412), &v), 0);
	assert_int_equal(from_pod(e, mk(&p, (struct pspec){ 4, IPPROTO_SCTP, POD4, PEER4, 38412,
							    2905, 0, 20 })),
			 TC_ACT_OK);
	assert_int_equal(e->n_ev, 1); /* the reply is the same association's */
	assert_int_equal(to_pod(e, mk(&p, (struct pspec){ 4, IPPROTO_SCTP, PEER4, POD4, 2905, 38413,
							  0, 20 })),
			 TC_ACT_SHOT);
	assert_int_equal(e->n_ev, 2);
}

static void test_reply_of_allowed_passes(void **state)
{
	struct env *e = *state;
	struct zt_ct_val v;
	struct pg_pkt p;
	__u64 st[ZT_TCS_MAX] = { [ZT_TCS_ALLOW_NEW] = 1, [ZT_TCS_ALLOW_EST] = 2 };

	std_setup(e);
	allow_port(e, 1, ZT_DIR_EGRESS, PEER_ID, IPPROTO_TCP, 443, 11);
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 40000, 443, TCP_SYN)), TC_ACT_OK);
	/* Ingress is isolated with no rule; the reply passes as part of the flow. */
	assert_int_equal(to_pod(e, tcp4(&p, PEER4, POD4, 443, 40000, TCP_SYN | TCP_ACK)),
			 TC_ACT_OK);
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 40000, 443, TCP_ACK)), TC_ACT_OK);
	assert_int_equal(e->n_ev, 1);
	assert_int_equal(ct_count(e), 1);
	assert_int_equal(ct_get(e, ct_key(if_pod, IPPROTO_TCP, POD4, PEER4, 40000, 443), &v), 0);
	assert_int_equal(v.state, ZT_CT_ESTABLISHED);
	assert_int_equal(v.d[0].packets, 2);
	assert_int_equal(v.d[1].packets, 1);
	check_stats(e, st);
	/* The same tuple towards the pod as a new flow would be denied. */
	assert_int_equal(to_pod(e, tcp4(&p, PEER4, POD4, 443, 40001, TCP_SYN)), TC_ACT_SHOT);
}

static void test_reply_of_denied_drops(void **state)
{
	struct env *e = *state;
	struct zt_ct_val v;
	struct pg_pkt p;
	__u64 st[ZT_TCS_MAX] = { [ZT_TCS_DENY_NEW] = 1, [ZT_TCS_DENY_EST] = 2 };

	std_setup(e);
	/* Ingress from the peer's port 80 would be allowed as a new flow. */
	pol_add(e, (struct pol){ .slot = 1,
				 .dir = ZT_DIR_INGRESS,
				 .local = POD_ID,
				 .peer = PEER_ID,
				 .proto = IPPROTO_TCP,
				 .port_bits = 0,
				 .verdict = ZT_VERDICT_ALLOW,
				 .rule = 3,
				 .audit_verdict = ZT_VERDICT_ALLOW,
				 .audit_rule = 3 });
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 40000, 80, TCP_SYN)), TC_ACT_SHOT);
	assert_int_equal(to_pod(e, tcp4(&p, PEER4, POD4, 80, 40000, TCP_SYN | TCP_ACK)),
			 TC_ACT_SHOT);
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 40000, 80, TCP_SYN)), TC_ACT_SHOT);
	assert_int_equal(e->n_ev, 1);
	assert_int_equal(ct_count(e), 1);
	assert_int_equal(ct_get(e, ct_key(if_pod, IPPROTO_TCP, POD4, PEER4, 40000, 80), &v), 0);
	assert_int_equal(v.verdict, ZT_VERDICT_DENY);
	assert_int_equal(v.d[0].packets, 2);
	assert_int_equal(v.d[1].packets, 1);
	check_stats(e, st);
}

static void test_any_deny_beats_peer_allow(void **state)
{
	struct env *e = *state;
	struct pg_pkt p;

	std_setup(e);
	allow_port(e, 1, ZT_DIR_EGRESS, PEER_ID, IPPROTO_TCP, 443, 11);
	pol_add(e, (struct pol){ .slot = 1,
				 .dir = ZT_DIR_EGRESS,
				 .local = POD_ID,
				 .peer = ZT_ID_ANY,
				 .proto = IPPROTO_TCP,
				 .port = 443,
				 .port_bits = 16,
				 .verdict = ZT_VERDICT_DENY,
				 .rule = 12,
				 .audit_verdict = ZT_VERDICT_DENY,
				 .audit_rule = 12 });
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 40000, 443, TCP_SYN)), TC_ACT_SHOT);
	ev_check(e, 0,
		 (struct ev_want){ ZT_VERDICT_DENY, 0, ZT_REASON_RULE_DENY, ZT_DIR_EGRESS, 0, 12,
				   PEER_ID, 1 });
}

static void test_peer_deny_beats_any_allow(void **state)
{
	struct env *e = *state;
	struct pg_pkt p;

	std_setup(e);
	allow_port(e, 1, ZT_DIR_EGRESS, ZT_ID_ANY, IPPROTO_TCP, 443, 13);
	pol_add(e, (struct pol){ .slot = 1,
				 .dir = ZT_DIR_EGRESS,
				 .local = POD_ID,
				 .peer = PEER_ID,
				 .proto = IPPROTO_TCP,
				 .port = 443,
				 .port_bits = 16,
				 .verdict = ZT_VERDICT_DENY,
				 .rule = 14,
				 .audit_verdict = ZT_VERDICT_DENY,
				 .audit_rule = 14 });
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 40000, 443, TCP_SYN)), TC_ACT_SHOT);
	ev_check(e, 0,
		 (struct ev_want){ ZT_VERDICT_DENY, 0, ZT_REASON_RULE_DENY, ZT_DIR_EGRESS, 0, 14,
				   PEER_ID, 1 });
	/* Another peer only meets the ANY allow. */
	assert_int_equal(from_pod(e, tcp4(&p, POD4, WORLD4, 40000, 443, TCP_SYN)), TC_ACT_OK);
	ev_check(e, 1,
		 (struct ev_want){ ZT_VERDICT_ALLOW, 0, ZT_REASON_RULE_ALLOW, ZT_DIR_EGRESS, 0, 13,
				   ZT_ID_WORLD_V4, 1 });
}

/* Any-peer allow alone allows: a peer-specific "none" is no verdict. */
static void test_any_allow_alone(void **state)
{
	struct env *e = *state;
	struct pg_pkt p;

	std_setup(e);
	allow_port(e, 1, ZT_DIR_EGRESS, ZT_ID_ANY, IPPROTO_UDP, 53, 15);
	pol_add(e, (struct pol){ .slot = 1,
				 .dir = ZT_DIR_EGRESS,
				 .local = POD_ID,
				 .peer = PEER_ID,
				 .proto = IPPROTO_UDP,
				 .port = 53,
				 .port_bits = 16,
				 .verdict = ZT_VERDICT_NONE });
	assert_int_equal(from_pod(e, udp4(&p, POD4, PEER4, 5353, 53)), TC_ACT_OK);
	ev_check(e, 0,
		 (struct ev_want){ ZT_VERDICT_ALLOW, 0, ZT_REASON_RULE_ALLOW, ZT_DIR_EGRESS, 0, 15,
				   PEER_ID, 1 });
}

/*
 * Within one peer the longest entry wins: an allow of 0-1023 with a /16
 * entry for 22 that the compiler stored as deny (the combined verdict).
 */
static void test_longest_entry_combined(void **state)
{
	struct env *e = *state;
	struct pg_pkt p;

	std_setup(e);
	pol_add(e, (struct pol){ .slot = 1,
				 .dir = ZT_DIR_EGRESS,
				 .local = POD_ID,
				 .peer = PEER_ID,
				 .proto = IPPROTO_TCP,
				 .port = 0,
				 .port_bits = 6,
				 .verdict = ZT_VERDICT_ALLOW,
				 .rule = 31,
				 .audit_verdict = ZT_VERDICT_ALLOW,
				 .audit_rule = 31 });
	pol_add(e, (struct pol){ .slot = 1,
				 .dir = ZT_DIR_EGRESS,
				 .local = POD_ID,
				 .peer = PEER_ID,
				 .proto = IPPROTO_TCP,
				 .port = 22,
				 .port_bits = 16,
				 .verdict = ZT_VERDICT_DENY,
				 .rule = 32,
				 .audit_verdict = ZT_VERDICT_DENY,
				 .audit_rule = 32 });
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 40000, 22, TCP_SYN)), TC_ACT_SHOT);
	ev_check(e, 0,
		 (struct ev_want){ ZT_VERDICT_DENY, 0, ZT_REASON_RULE_DENY, ZT_DIR_EGRESS, 0, 32,
				   PEER_ID, 1 });
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 40000, 1023, TCP_SYN)), TC_ACT_OK);
	ev_check(e, 1,
		 (struct ev_want){ ZT_VERDICT_ALLOW, 0, ZT_REASON_RULE_ALLOW, ZT_DIR_EGRESS, 0, 31,
				   PEER_ID, 1 });
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 40000, 1024, TCP_SYN)), TC_ACT_SHOT);
	ev_check(e, 2,
		 (struct ev_want){ ZT_VERDICT_DENY, 0, ZT_REASON_NO_RULE, ZT_DIR_EGRESS, 0,
				   ISO_RULE, PEER_ID, 1 });
}

/* Ports 8000-8015 as a /12 block and 8016-8019 as a /14 block; 8020 outside. */
static void test_port_range_blocks(void **state)
{
	struct env *e = *state;
	static const struct {
		__u16 port;
		int verdict;
		__u32 rule;
	} cases[] = { { 7999, TC_ACT_SHOT, ISO_RULE }, { 8000, TC_ACT_OK, 41 },
		      { 8009, TC_ACT_OK, 41 },	       { 8015, TC_ACT_OK, 41 },
		      { 8016, TC_ACT_OK, 41 },	       { 8019, TC_ACT_OK, 41 },
		      { 8020, TC_ACT_SHOT, ISO_RULE } };
	struct pg_pkt p;
	size_t i;

	std_setup(e);
	pol_add(e, (struct pol){ .slot = 1,
				 .dir = ZT_DIR_INGRESS,
				 .local = POD_ID,
				 .peer = PEER_ID,
				 .proto = IPPROTO_UDP,
				 .port = 8000,
				 .port_bits = 12,
				 .verdict = ZT_VERDICT_ALLOW,
				 .rule = 41,
				 .audit_verdict = ZT_VERDICT_ALLOW,
				 .audit_rule = 41 });
	pol_add(e, (struct pol){ .slot = 1,
				 .dir = ZT_DIR_INGRESS,
				 .local = POD_ID,
				 .peer = PEER_ID,
				 .proto = IPPROTO_UDP,
				 .port = 8016,
				 .port_bits = 14,
				 .verdict = ZT_VERDICT_ALLOW,
				 .rule = 41,
				 .audit_verdict = ZT_VERDICT_ALLOW,
				 .audit_rule = 41 });
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(to_pod(e, udp4(&p, PEER4, POD4, 7000, cases[i].port)),
				 cases[i].verdict);
		assert_int_equal(e->n_ev, (int)i + 1);
		assert_int_equal(e->ev[i].rule_id, cases[i].rule);
		assert_int_equal(e->ev[i].dport, cases[i].port);
	}
	/* The same ports over TCP: no entry. */
	assert_int_equal(to_pod(e, tcp4(&p, PEER4, POD4, 7000, 8000, TCP_SYN)), TC_ACT_SHOT);
}

static void test_any_proto_entry(void **state)
{
	struct env *e = *state;
	struct pg_pkt p;

	std_setup(e);
	pol_add(e, (struct pol){ .slot = 1,
				 .dir = ZT_DIR_EGRESS,
				 .local = POD_ID,
				 .peer = PEER_ID,
				 .port_bits = -1,
				 .verdict = ZT_VERDICT_ALLOW,
				 .rule = 51,
				 .audit_verdict = ZT_VERDICT_ALLOW,
				 .audit_rule = 51 });
	assert_int_equal(from_pod(e, udp4(&p, POD4, PEER4, 1, 9)), TC_ACT_OK);
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 1, 65535, TCP_SYN)), TC_ACT_OK);
	assert_int_equal(from_pod(e, mk(&p, (struct pspec){ 4, 47, POD4, PEER4, 0, 0, 0, 4 })),
			 TC_ACT_OK);
	assert_int_equal(from_pod(e, udp4(&p, POD4, WORLD4, 1, 9)), TC_ACT_SHOT);
	assert_int_equal(e->n_ev, 4);
	assert_int_equal(e->ev[2].proto, 47);
	assert_int_equal(e->ev[2].rule_id, 51);
}

/* ipBlock 198.0.0.0/8 except 198.18.128.0/17, through CIDR identities. */
static void test_ipblock_except(void **state)
{
	struct env *e = *state;
	struct pg_pkt p;

	std_setup(e);
	ipc_add(e, 1, "198.0.0.0/8", CIDR_ID1, 0);
	ipc_add(e, 1, "198.18.128.0/17", CIDR_ID2, 0);
	allow_port(e, 1, ZT_DIR_EGRESS, CIDR_ID1, IPPROTO_TCP, 443, 61);
	assert_int_equal(from_pod(e, tcp4(&p, POD4, "198.18.5.5", 1000, 443, TCP_SYN)), TC_ACT_OK);
	ev_check(e, 0,
		 (struct ev_want){ ZT_VERDICT_ALLOW, 0, ZT_REASON_RULE_ALLOW, ZT_DIR_EGRESS, 0, 61,
				   CIDR_ID1, 1 });
	assert_int_equal(e->ev[0].peer_ep_id, 0);
	assert_int_equal(from_pod(e, tcp4(&p, POD4, "198.18.200.1", 1000, 443, TCP_SYN)),
			 TC_ACT_SHOT);
	ev_check(e, 1,
		 (struct ev_want){ ZT_VERDICT_DENY, 0, ZT_REASON_NO_RULE, ZT_DIR_EGRESS, 0,
				   ISO_RULE, CIDR_ID2, 1 });
	/* The peer endpoint's /32 is longer than the /8: its own identity. */
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 1000, 443, TCP_SYN)), TC_ACT_SHOT);
	ev_check(e, 2,
		 (struct ev_want){ ZT_VERDICT_DENY, 0, ZT_REASON_NO_RULE, ZT_DIR_EGRESS, 0,
				   ISO_RULE, PEER_ID, 1 });
}

/* A policy entry of the pod for one peer, one TCP port, enforce and audit alike. */
static void tcp_rule(struct env *e, __u8 dir, __u32 peer, __u16 port, __u8 verdict, __u32 rule)
{
	pol_add(e, (struct pol){ .slot = 1,
				 .dir = dir,
				 .local = POD_ID,
				 .peer = peer,
				 .proto = IPPROTO_TCP,
				 .port = port,
				 .port_bits = 16,
				 .verdict = verdict,
				 .rule = rule,
				 .audit_verdict = verdict,
				 .audit_rule = rule });
}

/*
 * ipBlock matches endpoints: the peer endpoint's ipcache entry carries the
 * CIDR identity it lies in, and the policy is looked up under both; deny
 * of either wins, then the lowest allowing rule.
 */
static void test_ipblock_matches_endpoint(void **state)
{
	struct env *e = *state;
	struct pg_pkt p;
	struct zt_ct_val v;

	std_setup(e);
	ipc_add(e, 1, "198.18.0.0/15", CIDR_ID1, 0);
	ipc_add_val(e, 1, PEER4 "/32",
		    (struct zt_ipcache_val){
			    .identity = PEER_ID, .ep_id = PEER_EP, .cidr_id = CIDR_ID1 });
	tcp_rule(e, ZT_DIR_EGRESS, CIDR_ID1, 443, ZT_VERDICT_ALLOW, 61);
	tcp_rule(e, ZT_DIR_EGRESS, CIDR_ID1, 8443, ZT_VERDICT_ALLOW, 62);
	tcp_rule(e, ZT_DIR_EGRESS, PEER_ID, 8443, ZT_VERDICT_DENY, 70);
	tcp_rule(e, ZT_DIR_EGRESS, PEER_ID, 22, ZT_VERDICT_ALLOW, 63);
	tcp_rule(e, ZT_DIR_EGRESS, CIDR_ID1, 22, ZT_VERDICT_DENY, 71);
	tcp_rule(e, ZT_DIR_EGRESS, PEER_ID, 9000, ZT_VERDICT_ALLOW, 80);
	tcp_rule(e, ZT_DIR_EGRESS, CIDR_ID1, 9000, ZT_VERDICT_ALLOW, 64);
	tcp_rule(e, ZT_DIR_INGRESS, CIDR_ID1, 5432, ZT_VERDICT_ALLOW, 65);

	/* Allowed by the CIDR identity alone; the event names the endpoint. */
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 1000, 443, TCP_SYN)), TC_ACT_OK);
	ev_check(e, 0,
		 (struct ev_want){ ZT_VERDICT_ALLOW, 0, ZT_REASON_RULE_ALLOW, ZT_DIR_EGRESS, 0, 61,
				   PEER_ID, 1 });
	assert_int_equal(e->ev[0].peer_ep_id, PEER_EP);
	/* A port no entry of either identity allows. */
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 1001, 80, TCP_SYN)), TC_ACT_SHOT);
	ev_check(e, 1,
		 (struct ev_want){ ZT_VERDICT_DENY, 0, ZT_REASON_NO_RULE, ZT_DIR_EGRESS, 0,
				   ISO_RULE, PEER_ID, 1 });
	/* Deny under the endpoint identity beats allow under the CIDR one... */
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 1002, 8443, TCP_SYN)), TC_ACT_SHOT);
	ev_check(e, 2,
		 (struct ev_want){ ZT_VERDICT_DENY, 0, ZT_REASON_RULE_DENY, ZT_DIR_EGRESS, 0, 70,
				   PEER_ID, 1 });
	/* ... and the other way round. */
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 1003, 22, TCP_SYN)), TC_ACT_SHOT);
	ev_check(e, 3,
		 (struct ev_want){ ZT_VERDICT_DENY, 0, ZT_REASON_RULE_DENY, ZT_DIR_EGRESS, 0, 71,
				   PEER_ID, 1 });
	/* Both allow: the lower rule id is reported. */
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 1004, 9000, TCP_SYN)), TC_ACT_OK);
	ev_check(e, 4,
		 (struct ev_want){ ZT_VERDICT_ALLOW, 0, ZT_REASON_RULE_ALLOW, ZT_DIR_EGRESS, 0, 64,
				   PEER_ID, 1 });
	/* Ingress: the source endpoint's CIDR identity. */
	assert_int_equal(to_pod(e, tcp4(&p, PEER4, POD4, 1005, 5432, TCP_SYN)), TC_ACT_OK);
	ev_check(e, 5,
		 (struct ev_want){ ZT_VERDICT_ALLOW, 0, ZT_REASON_RULE_ALLOW, ZT_DIR_INGRESS, 0, 65,
				   PEER_ID, 1 });
	/* An endpoint entry without cidr_id is not looked up under it. */
	ipc_add(e, 1, PEER4 "/32", PEER_ID, PEER_EP);
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 1006, 443, TCP_SYN)), TC_ACT_SHOT);
	ev_check(e, 6,
		 (struct ev_want){ ZT_VERDICT_DENY, 0, ZT_REASON_NO_RULE, ZT_DIR_EGRESS, 0,
				   ISO_RULE, PEER_ID, 1 });
	/* The established flow keeps its cached verdict (same generation). */
	assert_int_equal(to_pod(e, tcp4(&p, PEER4, POD4, 443, 1000, TCP_SYN | TCP_ACK)), TC_ACT_OK);
	assert_int_equal(ct_get(e, ct_key(if_pod, IPPROTO_TCP, POD4, PEER4, 1000, 443), &v), 0);
	assert_int_equal(v.verdict, ZT_VERDICT_ALLOW);
	assert_int_equal(v.rule_id, 61);
	assert_int_equal(e->n_ev, 7);
}

/* The port class: a third identity, for egress named ports of ipBlock rules. */
static void test_ipblock_port_class(void **state)
{
	struct env *e = *state;
	struct pg_pkt p;
	const __u32 pc = ZT_ID_FIRST_PORT_CLASS + 3;

	std_setup(e);
	ipc_add_val(e, 1, PEER4 "/32",
		    (struct zt_ipcache_val){ .identity = PEER_ID,
					     .ep_id = PEER_EP,
					     .cidr_id = CIDR_ID1,
					     .port_class = pc });
	ipc_add_val(e, 1, PEER6 "/128",
		    (struct zt_ipcache_val){ .identity = PEER_ID,
					     .ep_id = PEER_EP,
					     .cidr_id = CIDR_ID2,
					     .port_class = pc });
	tcp_rule(e, ZT_DIR_EGRESS, pc, 8080, ZT_VERDICT_ALLOW, 66);
	tcp_rule(e, ZT_DIR_EGRESS, CIDR_ID2, 8080, ZT_VERDICT_DENY, 72);
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 1000, 8080, TCP_SYN)), TC_ACT_OK);
	ev_check(e, 0,
		 (struct ev_want){ ZT_VERDICT_ALLOW, 0, ZT_REASON_RULE_ALLOW, ZT_DIR_EGRESS, 0, 66,
				   PEER_ID, 1 });
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 1001, 8081, TCP_SYN)), TC_ACT_SHOT);
	/* IPv6: the CIDR identity's deny wins over the port class's allow. */
	assert_int_equal(from_pod(e, tcp6(&p, POD6, PEER6, 1000, 8080, TCP_SYN)), TC_ACT_SHOT);
	ev_check(e, 2,
		 (struct ev_want){ ZT_VERDICT_DENY, 0, ZT_REASON_RULE_DENY, ZT_DIR_EGRESS, 0, 72,
				   PEER_ID, 1 });
}

static void test_world_fallback_v4(void **state)
{
	struct env *e = *state;
	struct pg_pkt p;

	std_setup(e); /* no 0/0 entry: a miss means the world */
	allow_port(e, 1, ZT_DIR_EGRESS, ZT_ID_WORLD_V4, IPPROTO_TCP, 443, 71);
	assert_int_equal(from_pod(e, tcp4(&p, POD4, WORLD4, 1000, 443, TCP_SYN)), TC_ACT_OK);
	ev_check(e, 0,
		 (struct ev_want){ ZT_VERDICT_ALLOW, 0, ZT_REASON_RULE_ALLOW, ZT_DIR_EGRESS, 0, 71,
				   ZT_ID_WORLD_V4, 1 });
	assert_int_equal(e->ev[0].peer_ep_id, 0);
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 1000, 443, TCP_SYN)), TC_ACT_SHOT);
}

static void test_world_fallback_v6(void **state)
{
	struct env *e = *state;
	struct pg_pkt p;

	std_setup(e);
	allow_port(e, 1, ZT_DIR_EGRESS, ZT_ID_WORLD_V6, IPPROTO_TCP, 443, 72);
	allow_port(e, 1, ZT_DIR_EGRESS, ZT_ID_WORLD_V4, IPPROTO_TCP, 80, 73);
	assert_int_equal(from_pod(e, tcp6(&p, POD6, WORLD6, 1000, 443, TCP_SYN)), TC_ACT_OK);
	ev_check(e, 0,
		 (struct ev_want){ ZT_VERDICT_ALLOW, 0, ZT_REASON_RULE_ALLOW, ZT_DIR_EGRESS, 0, 72,
				   ZT_ID_WORLD_V6, 1 });
	/* The IPv4 world identity is not the IPv6 one. */
	assert_int_equal(from_pod(e, tcp6(&p, POD6, WORLD6, 1000, 80, TCP_SYN)), TC_ACT_SHOT);
}

/* ---- audit ---- */

static void test_audit_isolated(void **state)
{
	struct env *e = *state;
	struct zt_ct_val v;
	struct pg_pkt p;
	__u64 st[ZT_TCS_MAX] = { [ZT_TCS_AUDIT] = 3 };

	ep_add(e, if_pod, POD_EP, POD_ID);
	ipc_std(e, 1);
	/* Not isolated by enforce policies; an audit-mode policy isolates it. */
	iso_add(e, 1, ZT_DIR_EGRESS, POD_ID, 0, 1, 0, 0, 77);
	set_gen(e, 1);
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 40000, 443, TCP_SYN)), TC_ACT_OK);
	ev_check(e, 0,
		 (struct ev_want){ ZT_VERDICT_ALLOW, 1, ZT_REASON_NO_RULE, ZT_DIR_EGRESS, 0, 77,
				   PEER_ID, 1 });
	assert_int_equal(to_pod(e, tcp4(&p, PEER4, POD4, 443, 40000, TCP_SYN | TCP_ACK)),
			 TC_ACT_OK);
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 40000, 443, TCP_ACK)), TC_ACT_OK);
	assert_int_equal(e->n_ev, 1);
	assert_int_equal(ct_get(e, ct_key(if_pod, IPPROTO_TCP, POD4, PEER4, 40000, 443), &v), 0);
	assert_int_equal(v.audit, 1);
	assert_int_equal(v.verdict, ZT_VERDICT_ALLOW);
	check_stats(e, st);
}

static void test_audit_rule_deny(void **state)
{
	struct env *e = *state;
	struct pg_pkt p;

	std_setup(e);
	pol_add(e, (struct pol){ .slot = 1,
				 .dir = ZT_DIR_EGRESS,
				 .local = POD_ID,
				 .peer = PEER_ID,
				 .proto = IPPROTO_TCP,
				 .port = 443,
				 .port_bits = 16,
				 .verdict = ZT_VERDICT_ALLOW,
				 .rule = 81,
				 .audit_verdict = ZT_VERDICT_DENY,
				 .audit_rule = 82 });
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 40000, 443, TCP_SYN)), TC_ACT_OK);
	ev_check(e, 0,
		 (struct ev_want){ ZT_VERDICT_ALLOW, 1, ZT_REASON_RULE_DENY, ZT_DIR_EGRESS, 0, 82,
				   PEER_ID, 1 });
	/* Audit allows too: a plain allow. */
	pol_add(e, (struct pol){ .slot = 1,
				 .dir = ZT_DIR_EGRESS,
				 .local = POD_ID,
				 .peer = PEER_ID,
				 .proto = IPPROTO_TCP,
				 .port = 444,
				 .port_bits = 16,
				 .verdict = ZT_VERDICT_ALLOW,
				 .rule = 83,
				 .audit_verdict = ZT_VERDICT_ALLOW,
				 .audit_rule = 83 });
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 40000, 444, TCP_SYN)), TC_ACT_OK);
	ev_check(e, 1,
		 (struct ev_want){ ZT_VERDICT_ALLOW, 0, ZT_REASON_RULE_ALLOW, ZT_DIR_EGRESS, 0, 83,
				   PEER_ID, 1 });
	/* Enforce denies, audit allows: a deny without audit. */
	pol_add(e, (struct pol){ .slot = 1,
				 .dir = ZT_DIR_EGRESS,
				 .local = POD_ID,
				 .peer = PEER_ID,
				 .proto = IPPROTO_TCP,
				 .port = 445,
				 .port_bits = 16,
				 .verdict = ZT_VERDICT_DENY,
				 .rule = 84,
				 .audit_verdict = ZT_VERDICT_ALLOW,
				 .audit_rule = 85 });
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 40000, 445, TCP_SYN)), TC_ACT_SHOT);
	ev_check(e, 2,
		 (struct ev_want){ ZT_VERDICT_DENY, 0, ZT_REASON_RULE_DENY, ZT_DIR_EGRESS, 0, 84,
				   PEER_ID, 1 });
}

/* ---- generations ---- */

static void test_revocation(void **state)
{
	struct env *e = *state;
	const struct zt_ev_policy *ev;
	struct zt_ct_val v;
	struct pg_pkt p;
	__u64 st[ZT_TCS_MAX] = {
		[ZT_TCS_ALLOW_NEW] = 1, [ZT_TCS_ALLOW_EST] = 1, [ZT_TCS_DENY_EST] = 2
	};

	std_setup(e);
	allow_port(e, 1, ZT_DIR_EGRESS, PEER_ID, IPPROTO_TCP, 443, 11);
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 40000, 443, TCP_SYN)), TC_ACT_OK);
	assert_int_equal(to_pod(e, tcp4(&p, PEER4, POD4, 443, 40000, TCP_SYN | TCP_ACK)),
			 TC_ACT_OK);
	/* The next generation in slot 0: isolated, no rule for 443. */
	ipc_std(e, 0);
	isolate(e, 0);
	set_gen(e, 2);
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 40000, 443, TCP_ACK)), TC_ACT_SHOT);
	assert_int_equal(e->n_ev, 2);
	ev = ev_check(e, 1,
		      (struct ev_want){ ZT_VERDICT_DENY, 0, ZT_REASON_NO_RULE, ZT_DIR_EGRESS, 1,
					ISO_RULE, PEER_ID, 2 });
	ev_tuple(ev, IPPROTO_TCP, POD4, PEER4, 40000, 443);
	assert_int_equal(ev->tcp_flags, TCP_ACK);
	/* The reply is dropped too, without another event. */
	assert_int_equal(to_pod(e, tcp4(&p, PEER4, POD4, 443, 40000, TCP_ACK)), TC_ACT_SHOT);
	assert_int_equal(e->n_ev, 2);
	assert_int_equal(ct_get(e, ct_key(if_pod, IPPROTO_TCP, POD4, PEER4, 40000, 443), &v), 0);
	assert_int_equal(v.gen, 2);
	assert_int_equal(v.verdict, ZT_VERDICT_DENY);
	check_stats(e, st);
}

/* Revoked at a reply packet: the event carries the flow's original tuple. */
static void test_revocation_on_reply(void **state)
{
	struct env *e = *state;
	const struct zt_ev_policy *ev;
	struct pg_pkt p;

	std_setup(e);
	allow_port(e, 1, ZT_DIR_INGRESS, PEER_ID, IPPROTO_UDP, 53, 16);
	assert_int_equal(to_pod(e, udp4(&p, PEER4, POD4, 5353, 53)), TC_ACT_OK);
	ipc_std(e, 0);
	isolate(e, 0);
	set_gen(e, 2);
	assert_int_equal(from_pod(e, udp4(&p, POD4, PEER4, 53, 5353)), TC_ACT_SHOT);
	assert_int_equal(e->n_ev, 2);
	ev = ev_check(e, 1,
		      (struct ev_want){ ZT_VERDICT_DENY, 0, ZT_REASON_NO_RULE, ZT_DIR_INGRESS, 1,
					ISO_RULE, PEER_ID, 2 });
	ev_tuple(ev, IPPROTO_UDP, PEER4, POD4, 5353, 53);
}

/* A flow the next generation still allows carries on, with no event. */
static void test_gen_flip_still_allowed(void **state)
{
	struct env *e = *state;
	struct zt_ct_val v;
	struct pg_pkt p;

	std_setup(e);
	allow_port(e, 1, ZT_DIR_EGRESS, PEER_ID, IPPROTO_TCP, 443, 11);
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 40000, 443, TCP_SYN)), TC_ACT_OK);
	ipc_std(e, 0);
	isolate(e, 0);
	allow_port(e, 0, ZT_DIR_EGRESS, PEER_ID, IPPROTO_TCP, 443, 99);
	set_gen(e, 2);
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 40000, 443, TCP_ACK)), TC_ACT_OK);
	assert_int_equal(e->n_ev, 1);
	assert_int_equal(ct_get(e, ct_key(if_pod, IPPROTO_TCP, POD4, PEER4, 40000, 443), &v), 0);
	assert_int_equal(v.gen, 2);
	assert_int_equal(v.rule_id, 99);
}

/* Denied, then allowed by the next generation: passes, an event without revoked. */
static void test_gen_flip_grants(void **state)
{
	struct env *e = *state;
	struct pg_pkt p;

	std_setup(e);
	assert_int_equal(from_pod(e, udp4(&p, POD4, PEER4, 4000, 53)), TC_ACT_SHOT);
	ipc_std(e, 0);
	isolate(e, 0);
	allow_port(e, 0, ZT_DIR_EGRESS, PEER_ID, IPPROTO_UDP, 53, 98);
	set_gen(e, 2);
	assert_int_equal(from_pod(e, udp4(&p, POD4, PEER4, 4000, 53)), TC_ACT_OK);
	assert_int_equal(e->n_ev, 2);
	ev_check(e, 1,
		 (struct ev_want){ ZT_VERDICT_ALLOW, 0, ZT_REASON_RULE_ALLOW, ZT_DIR_EGRESS, 0, 98,
				   PEER_ID, 2 });
}

/* Within one generation the cached verdict holds, whatever the slots hold. */
static void test_same_gen_uses_cache(void **state)
{
	struct env *e = *state;
	struct pg_pkt p;

	std_setup(e);
	allow_port(e, 1, ZT_DIR_EGRESS, PEER_ID, IPPROTO_TCP, 443, 11);
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 40000, 443, TCP_SYN)), TC_ACT_OK);
	/* Not how the daemon works (it never edits the live slot): shows the cache. */
	assert_int_equal(bpf_map_delete_elem(bpf_map__fd(e->skel->maps.pol_isolation),
					     &(struct zt_iso_key){ .slot = 1,
								   .dir = ZT_DIR_EGRESS,
								   .identity = POD_ID }),
			 0);
	iso_add(e, 1, ZT_DIR_EGRESS, POD_ID, 1, 1, 0, 1, 1);
	pol_add(e, (struct pol){ .slot = 1,
				 .dir = ZT_DIR_EGRESS,
				 .local = POD_ID,
				 .peer = PEER_ID,
				 .proto = IPPROTO_TCP,
				 .port = 443,
				 .port_bits = 16,
				 .verdict = ZT_VERDICT_DENY,
				 .rule = 2 });
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 40000, 443, TCP_ACK)), TC_ACT_OK);
	assert_int_equal(e->n_ev, 1);
	/* A new flow sees the edit. */
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 40001, 443, TCP_SYN)), TC_ACT_SHOT);
}

static void test_gen0_denies(void **state)
{
	struct env *e = *state;
	struct pg_pkt p;
	__u64 st[ZT_TCS_MAX] = { [ZT_TCS_DENY_NEW] = 2, [ZT_TCS_DENY_EST] = 1 };

	ep_add(e, if_pod, POD_EP, POD_ID);
	/* Policy written in slot 0 but not published: gen stays 0. */
	ipc_std(e, 0);
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 40000, 443, TCP_SYN)), TC_ACT_SHOT);
	ev_check(e, 0,
		 (struct ev_want){ ZT_VERDICT_DENY, 0, ZT_REASON_NO_POLICY, ZT_DIR_EGRESS, 0, 0,
				   ZT_ID_WORLD_V4, 0 });
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 40000, 443, TCP_SYN)), TC_ACT_SHOT);
	assert_int_equal(to_pod(e, udp4(&p, PEER4, POD4, 1, 2)), TC_ACT_SHOT);
	assert_int_equal(e->n_ev, 2);
	check_stats(e, st);
	/* Publishing a generation that allows lets the flow through. */
	set_gen(e, 2);
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 40000, 443, TCP_ACK)), TC_ACT_OK);
	ev_check(e, 2,
		 (struct ev_want){ ZT_VERDICT_ALLOW, 0, ZT_REASON_NOT_ISOLATED, ZT_DIR_EGRESS, 0, 0,
				   PEER_ID, 2 });
}

/* ---- what passes without policy ---- */

static void test_unregistered_ifindex_passes(void **state)
{
	struct env *e = *state;
	struct pg_pkt p;
	__u64 st[ZT_TCS_MAX] = { [ZT_TCS_NO_ENDPOINT] = 3 };

	std_setup(e); /* isolated: would deny */
	assert_int_equal(run_on(e, e->skel->progs.tc_from_pod, if_unreg,
				tcp4(&p, POD4, PEER4, 1, 2, TCP_SYN)),
			 TC_ACT_OK);
	assert_int_equal(
		run_on(e, e->skel->progs.tc_to_pod, if_unreg, tcp4(&p, PEER4, POD4, 1, 2, TCP_SYN)),
		TC_ACT_OK);
	/* Even a malformed packet. */
	assert_int_equal(run_on(e, e->skel->progs.tc_to_pod, if_unreg,
				mk(&p, (struct pspec){ 4, 47, POD4, PEER4, 0, 0, 0, 0 })),
			 TC_ACT_OK);
	assert_int_equal(e->n_ev, 0);
	assert_int_equal(ct_count(e), 0);
	check_stats(e, st);
}

static void test_arp_passes(void **state)
{
	struct env *e = *state;
	struct pg_spec g = { .ethertype = ETH_P_ARP, .payload = 28 };
	struct pg_pkt p;
	__u64 st[ZT_TCS_MAX] = { [ZT_TCS_NOT_IP] = 2 };

	std_setup(e);
	set_gen(e, 0);
	assert_int_equal(pg_build(&g, &p), 0);
	assert_int_equal(from_pod(e, &p), TC_ACT_OK);
	assert_int_equal(to_pod(e, &p), TC_ACT_OK);
	assert_int_equal(e->n_ev, 0);
	check_stats(e, st);
}

static void test_nd_passes(void **state)
{
	struct env *e = *state;
	struct pg_pkt p;
	__u64 st[ZT_TCS_MAX] = { [ZT_TCS_NOT_IP] = 9, [ZT_TCS_DENY_NEW] = 2 };
	static const int mld[] = { 130, 131, 132, 143 };
	int type;

	std_setup(e);
	for (type = 133; type <= 137; type++)
		assert_int_equal((type & 1 ? to_pod : from_pod)(
					 e, mk(&p, (struct pspec){ 6, IPPROTO_ICMPV6, "fe80::1",
								   "ff02::1", type, 0, 0, 24 })),
				 TC_ACT_OK);
	/* Multicast listener discovery to a group passes too (MLDv2 reports to ff02::16). */
	for (int i = 0; i < 4; i++)
		assert_int_equal(
			from_pod(e, mk(&p, (struct pspec){ 6, IPPROTO_ICMPV6, "fe80::1", "ff02::16",
							   mld[i], 0, 0, 24 })),
			TC_ACT_OK);
	/* MLD types to a unicast address, and 138, are not: policy applies. */
	assert_int_equal(from_pod(e, mk(&p, (struct pspec){ 6, IPPROTO_ICMPV6, "fe80::1", "fe80::2",
							    132, 0, 0, 24 })),
			 TC_ACT_SHOT);
	assert_int_equal(from_pod(e, mk(&p, (struct pspec){ 6, IPPROTO_ICMPV6, "fe80::1", "ff02::2",
							    138, 0, 0, 24 })),
			 TC_ACT_SHOT);
	assert_int_equal(e->n_ev, 2);
	check_stats(e, st);
}

/*
 * A frame whose IP and UDP headers are beyond the skb's linear part (a tap
 * puts them in pages): the headers are pulled in and parsed again, so the
 * flow is the policy's, not a malformed packet. The kernel's own delivery,
 * not BPF_PROG_TEST_RUN, whose skb is always linear.
 */
static void test_headers_beyond_linear(void **state)
{
	struct env *e = *state;
	static uint8_t frame[TAP_NONLINEAR_LEN];
	int fd, ifindex = 0;
	struct zt_ct_val v;

	std_setup(e);
	allow_port(e, 1, ZT_DIR_EGRESS, PEER_ID, IPPROTO_UDP, 53, 17);
	fd = tap_open("ztt9", &ifindex);
	assert_true(fd >= 0);
	ep_add(e, (__u32)ifindex, POD_EP, POD_ID);
	assert_int_equal(tap_tc_ingress(ifindex, bpf_program__fd(e->skel->progs.tc_from_pod)), 0);
	assert_int_equal(tap_udp4_frame(frame, sizeof(frame), POD4, PEER4, 5353, 53), 0);
	assert_int_equal(tap_send_nonlinear(fd, frame, sizeof(frame)), 0);
	/* tun hands the frame to the stack before write returns. */
	assert_int_equal(stat_of(e, ZT_TCS_MALFORMED).packets, 0);
	assert_int_equal(stat_of(e, ZT_TCS_ALLOW_NEW).packets, 1);
	assert_int_equal(stat_of(e, ZT_TCS_ALLOW_NEW).bytes, sizeof(frame) - ETH_HLEN);
	assert_int_equal(ct_get(e, ct_key((__u32)ifindex, IPPROTO_UDP, POD4, PEER4, 5353, 53), &v),
			 0);
	assert_int_equal(v.d[0].packets, 1);
	assert_int_equal(v.d[0].bytes, sizeof(frame) - ETH_HLEN);
	close(fd);
}

static void test_malformed_drops(void **state)
{
	struct env *e = *state;
	struct pg_spec g[] = {
		{ .family = 4,
		  .src = POD4,
		  .dst = PEER4,
		  .proto = IPPROTO_TCP,
		  .sport = 1,
		  .dport = 2,
		  .cut_hdr = PG_L4,
		  .cut_keep = 12 },
		{ .family = 6,
		  .src = POD6,
		  .dst = PEER6,
		  .proto = IPPROTO_UDP,
		  .sport = 1,
		  .dport = 2,
		  .cut_hdr = PG_L4,
		  .cut_keep = 4 },
		{ .family = 4, .src = POD4, .dst = PEER4, .proto = IPPROTO_UDP, .ip_version = 5 },
		{ .family = 4, .src = POD4, .dst = PEER4, .proto = IPPROTO_ICMP, .ip_len_adj = 1 },
		/* (BPF_PROG_TEST_RUN refuses an IPv6 frame cut inside its IPv6 header.) */
		{ .family = 6, .src = POD6, .dst = PEER6, .proto = IPPROTO_TCP, .ip_version = 4 },
		{ .family = 6, .src = POD6, .dst = PEER6, .proto = IPPROTO_UDP, .ip_len_adj = 1 },
		{ .family = 4,
		  .src = POD4,
		  .dst = PEER4,
		  .proto = IPPROTO_ICMP,
		  .sport = 8,
		  .cut_hdr = PG_L4,
		  .cut_keep = 7 },
	};
	__u64 st[ZT_TCS_MAX] = { [ZT_TCS_MALFORMED] = 2 * 7 };
	struct pg_pkt p;
	size_t i;

	ep_add(e, if_pod, POD_EP, POD_ID);
	ipc_std(e, 1);
	set_gen(e, 1); /* not isolated: only the malformation drops */
	for (i = 0; i < sizeof(g) / sizeof(g[0]); i++) {
		assert_int_equal(pg_build(&g[i], &p), 0);
		assert_int_equal(from_pod(e, &p), TC_ACT_SHOT);
		assert_int_equal(to_pod(e, &p), TC_ACT_SHOT);
	}
	assert_int_equal(e->n_ev, 0);
	assert_int_equal(ct_count(e), 0);
	check_stats(e, st);
}

/* ---- conntrack ---- */

static void test_ct_tcp_lifecycle(void **state)
{
	struct env *e = *state;
	struct zt_ct_key k = ct_key(if_pod, IPPROTO_TCP, POD4, PEER4, 40000, 443);
	struct zt_ct_val v;
	struct pg_pkt p;
	__u64 bytes0 = 0, bytes1 = 0;

	std_setup(e);
	allow_port(e, 1, ZT_DIR_EGRESS, PEER_ID, IPPROTO_TCP, 443, 11);
	bytes0 += from_pod(e, tcp4(&p, POD4, PEER4, 40000, 443, TCP_SYN)) == TC_ACT_OK ? ip_len(p) :
											 0;
	assert_int_equal(ct_get(e, k, &v), 0);
	assert_int_equal(v.state, ZT_CT_NEW);
	assert_int_equal(v.flags_seen[0], TCP_SYN);
	assert_true(v.first_ns > 0 && v.first_ns == zt_ct_last_ns(&v));

	bytes1 += to_pod(e, tcp4(&p, PEER4, POD4, 443, 40000, TCP_SYN | TCP_ACK)) == TC_ACT_OK ?
			  ip_len(p) :
			  0;
	assert_int_equal(ct_get(e, k, &v), 0);
	/* The SYN-ACK alone: half-open until the opener's ACK. */
	assert_int_equal(v.state, ZT_CT_SYN_RECV);
	assert_true(zt_ct_last_ns(&v) > v.first_ns);

	bytes0 += from_pod(e, tcp4(&p, POD4, PEER4, 40000, 443, TCP_ACK | TCP_PSH)) == TC_ACT_OK ?
			  ip_len(p) :
			  0;
	assert_int_equal(ct_get(e, k, &v), 0);
	assert_int_equal(v.state, ZT_CT_ESTABLISHED);
	bytes0 += from_pod(e, tcp4(&p, POD4, PEER4, 40000, 443, TCP_FIN | TCP_ACK)) == TC_ACT_OK ?
			  ip_len(p) :
			  0;
	assert_int_equal(ct_get(e, k, &v), 0);
	assert_int_equal(v.state, ZT_CT_CLOSING);

	bytes1 += to_pod(e, tcp4(&p, PEER4, POD4, 443, 40000, TCP_FIN | TCP_ACK)) == TC_ACT_OK ?
			  ip_len(p) :
			  0;
	assert_int_equal(ct_get(e, k, &v), 0);
	assert_int_equal(v.state, ZT_CT_CLOSED);
	assert_int_equal(v.d[0].packets, 3);
	assert_int_equal(v.d[1].packets, 2);
	assert_int_equal(v.d[0].bytes, bytes0);
	assert_int_equal(v.d[1].bytes, bytes1);
	assert_int_equal(v.flags_seen[0], TCP_SYN | TCP_ACK | TCP_PSH | TCP_FIN);
	assert_int_equal(v.flags_seen[1], TCP_SYN | TCP_ACK | TCP_FIN);
	assert_int_equal(e->n_ev, 1);
}

static __u64 boot_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (__u64)ts.tv_sec * 1000000000ULL + (__u64)ts.tv_nsec;
}

/*
 * A spoofed-source SYN flood towards a listening pod: the pod answers each
 * SYN with a SYN-ACK (and retransmits it), the client never sends the ACK.
 * The entries stay half-open (SYN_RECV, with the short timeout) and never
 * become established; past that timeout the next packet is a new flow.
 * Before, the SYN-ACK made each one established for an hour.
 */
static void test_ct_syn_flood_stays_half_open(void **state)
{
	struct env *e = *state;
	struct zt_ct_val v;
	struct pg_pkt p;
	__u64 now;
	int fd;

	std_setup(e);
	fd = bpf_map__fd(e->skel->maps.conntrack);
	allow_port(e, 1, ZT_DIR_INGRESS, ZT_ID_WORLD_V4, IPPROTO_TCP, 80, 12);
	for (int i = 0; i < 16; i++) {
		char src[32];
		struct zt_ct_key k;

		snprintf(src, sizeof(src), "198.19.200.%d", 10 + i);
		k = ct_key(if_pod, IPPROTO_TCP, src, POD4, 1024 + i, 80);
		assert_int_equal(to_pod(e, tcp4(&p, src, POD4, 1024 + i, 80, TCP_SYN)), TC_ACT_OK);
		assert_int_equal(from_pod(e, tcp4(&p, POD4, src, 80, 1024 + i, TCP_SYN | TCP_ACK)),
				 TC_ACT_OK);
		/* The pod retransmits its SYN-ACK, the client its SYN: still half-open. */
		assert_int_equal(from_pod(e, tcp4(&p, POD4, src, 80, 1024 + i, TCP_SYN | TCP_ACK)),
				 TC_ACT_OK);
		assert_int_equal(to_pod(e, tcp4(&p, src, POD4, 1024 + i, 80, TCP_SYN)), TC_ACT_OK);
		assert_int_equal(ct_get(e, k, &v), 0);
		assert_int_equal(v.state, ZT_CT_SYN_RECV);
		assert_int_equal(v.d[0].packets, 2);
		assert_int_equal(v.d[1].packets, 2);
		assert_int_equal(v.flags_seen[0], TCP_SYN);
		assert_int_equal(v.flags_seen[1], TCP_SYN | TCP_ACK);
		assert_true(zt_ct_timeout(IPPROTO_TCP, v.state) == ZT_CT_TCP_SYN_TIMEOUT_NS);
	}
	assert_int_equal(ct_count(e), 16);
	assert_int_equal(e->n_ev, 16);

	/* Idle past the half-open timeout: the client's late ACK is a new (mid-stream) flow. */
	{
		struct zt_ct_key k = ct_key(if_pod, IPPROTO_TCP, "198.19.200.10", POD4, 1024, 80);

		assert_int_equal(ct_get(e, k, &v), 0);
		now = boot_now();
		ct_idle_since(&v, now - ZT_CT_TCP_SYN_TIMEOUT_NS - 1000000000ULL);
		assert_int_equal(bpf_map_update_elem(fd, &k, &v, BPF_EXIST), 0);
		assert_int_equal(to_pod(e, tcp4(&p, "198.19.200.10", POD4, 1024, 80, TCP_ACK)),
				 TC_ACT_OK);
		assert_int_equal(e->n_ev, 17);
		assert_int_equal(ct_get(e, k, &v), 0);
		assert_int_equal(v.state, ZT_CT_NEW);
		assert_int_equal(v.d[0].packets, 1);
		assert_int_equal(v.d[1].packets, 0);
	}
	/* Just inside it, the same ACK completes the handshake. */
	{
		struct zt_ct_key k = ct_key(if_pod, IPPROTO_TCP, "198.19.200.11", POD4, 1025, 80);

		assert_int_equal(ct_get(e, k, &v), 0);
		now = boot_now();
		ct_idle_since(&v, now - ZT_CT_TCP_SYN_TIMEOUT_NS + 1000000000ULL);
		assert_int_equal(bpf_map_update_elem(fd, &k, &v, BPF_EXIST), 0);
		assert_int_equal(to_pod(e, tcp4(&p, "198.19.200.11", POD4, 1025, 80, TCP_ACK)),
				 TC_ACT_OK);
		assert_int_equal(e->n_ev, 17);
		assert_int_equal(ct_get(e, k, &v), 0);
		assert_int_equal(v.state, ZT_CT_ESTABLISHED);
		assert_true(zt_ct_timeout(IPPROTO_TCP, v.state) == ZT_CT_TCP_EST_TIMEOUT_NS);
	}
}

/* The transitions around the handshake, one by one. */
static void test_ct_tcp_handshake_states(void **state)
{
	struct env *e = *state;
	struct zt_ct_key k = ct_key(if_pod, IPPROTO_TCP, POD4, PEER4, 41000, 443);
	struct zt_ct_val v;
	struct pg_pkt p;

	std_setup(e);
	allow_port(e, 1, ZT_DIR_EGRESS, PEER_ID, IPPROTO_TCP, 443, 11);
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 41000, 443, TCP_SYN)), TC_ACT_OK);
	/* An answer without SYN to a bare SYN (a challenge ACK) establishes nothing. */
	assert_int_equal(to_pod(e, tcp4(&p, PEER4, POD4, 443, 41000, TCP_ACK)), TC_ACT_OK);
	assert_int_equal(ct_get(e, k, &v), 0);
	assert_int_equal(v.state, ZT_CT_NEW);
	assert_int_equal(to_pod(e, tcp4(&p, PEER4, POD4, 443, 41000, TCP_SYN | TCP_ACK)),
			 TC_ACT_OK);
	assert_int_equal(ct_get(e, k, &v), 0);
	assert_int_equal(v.state, ZT_CT_SYN_RECV);
	/* Only an ACK without SYN from the opener completes the handshake. */
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 41000, 443, TCP_SYN | TCP_ACK)),
			 TC_ACT_OK);
	assert_int_equal(to_pod(e, tcp4(&p, PEER4, POD4, 443, 41000, TCP_ACK)), TC_ACT_OK);
	assert_int_equal(ct_get(e, k, &v), 0);
	assert_int_equal(v.state, ZT_CT_SYN_RECV);
	/* A FIN while half-open closes. */
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 41000, 443, TCP_FIN | TCP_ACK)),
			 TC_ACT_OK);
	assert_int_equal(ct_get(e, k, &v), 0);
	assert_int_equal(v.state, ZT_CT_CLOSING);

	/* Picked up mid-stream (the opener sent no bare SYN): any answer establishes. */
	k = ct_key(if_pod, IPPROTO_TCP, POD4, PEER4, 41001, 443);
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 41001, 443, TCP_ACK | TCP_PSH)),
			 TC_ACT_OK);
	assert_int_equal(to_pod(e, tcp4(&p, PEER4, POD4, 443, 41001, TCP_ACK)), TC_ACT_OK);
	assert_int_equal(ct_get(e, k, &v), 0);
	assert_int_equal(v.state, ZT_CT_ESTABLISHED);
	/* First seen at the SYN-ACK (its SYN went by unseen): the ACK back establishes. */
	k = ct_key(if_pod, IPPROTO_TCP, POD4, PEER4, 41002, 443);
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 41002, 443, TCP_SYN | TCP_ACK)),
			 TC_ACT_OK);
	assert_int_equal(to_pod(e, tcp4(&p, PEER4, POD4, 443, 41002, TCP_ACK)), TC_ACT_OK);
	assert_int_equal(ct_get(e, k, &v), 0);
	assert_int_equal(v.state, ZT_CT_ESTABLISHED);
}

static void test_ct_rst_and_reuse(void **state)
{
	struct env *e = *state;
	struct zt_ct_key k = ct_key(if_pod, IPPROTO_TCP, POD4, PEER4, 40000, 443);
	struct zt_ct_val v;
	struct pg_pkt p;

	std_setup(e);
	allow_port(e, 1, ZT_DIR_EGRESS, PEER_ID, IPPROTO_TCP, 443, 11);
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 40000, 443, TCP_SYN)), TC_ACT_OK);
	assert_int_equal(to_pod(e, tcp4(&p, PEER4, POD4, 443, 40000, TCP_RST | TCP_ACK)),
			 TC_ACT_OK);
	assert_int_equal(ct_get(e, k, &v), 0);
	assert_int_equal(v.state, ZT_CT_CLOSED);
	/* A new SYN on the closed tuple is a new flow: a fresh entry and event. */
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 40000, 443, TCP_SYN)), TC_ACT_OK);
	assert_int_equal(e->n_ev, 2);
	assert_int_equal(ct_get(e, k, &v), 0);
	assert_int_equal(v.state, ZT_CT_NEW);
	assert_int_equal(v.d[0].packets, 1);
	assert_int_equal(v.d[1].packets, 0);
}

static void test_ct_udp_state(void **state)
{
	struct env *e = *state;
	struct zt_ct_key k = ct_key(if_pod, IPPROTO_UDP, POD4, PEER4, 5353, 53);
	struct zt_ct_val v;
	struct pg_pkt p;

	std_setup(e);
	allow_port(e, 1, ZT_DIR_EGRESS, PEER_ID, IPPROTO_UDP, 53, 17);
	assert_int_equal(from_pod(e, udp4(&p, POD4, PEER4, 5353, 53)), TC_ACT_OK);
	assert_int_equal(from_pod(e, udp4(&p, POD4, PEER4, 5353, 53)), TC_ACT_OK);
	assert_int_equal(ct_get(e, k, &v), 0);
	assert_int_equal(v.state, ZT_CT_NEW);
	assert_int_equal(v.flags_seen[0], 0);
	assert_int_equal(to_pod(e, udp4(&p, PEER4, POD4, 53, 5353)), TC_ACT_OK);
	assert_int_equal(ct_get(e, k, &v), 0);
	assert_int_equal(v.state, ZT_CT_ESTABLISHED);
	assert_int_equal(v.d[0].packets, 2);
	assert_int_equal(v.d[1].packets, 1);
	assert_int_equal(v.d[1].bytes, ip_len(p));
	assert_int_equal(e->n_ev, 1);
}

/* An entry idle past its timeout is a new flow again. */
static void test_ct_expired_is_new(void **state)
{
	struct env *e = *state;
	struct zt_ct_key k = ct_key(if_pod, IPPROTO_UDP, POD4, PEER4, 5353, 53);
	struct zt_ct_val v;
	struct timespec ts;
	struct pg_pkt p;
	__u64 now;

	std_setup(e);
	allow_port(e, 1, ZT_DIR_EGRESS, PEER_ID, IPPROTO_UDP, 53, 17);
	assert_int_equal(from_pod(e, udp4(&p, POD4, PEER4, 5353, 53)), TC_ACT_OK);
	assert_int_equal(ct_get(e, k, &v), 0);
	clock_gettime(CLOCK_BOOTTIME, &ts);
	now = (__u64)ts.tv_sec * 1000000000ULL + (__u64)ts.tv_nsec;
	/* 59 s idle: still the same flow (the reply matches). */
	ct_idle_since(&v, now - ZT_CT_UDP_TIMEOUT_NS + 1000000000ULL);
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(e->skel->maps.conntrack), &k, &v, 0), 0);
	assert_int_equal(to_pod(e, udp4(&p, PEER4, POD4, 53, 5353)), TC_ACT_OK);
	assert_int_equal(e->n_ev, 1);
	/*
	 * The query's direction 61 s idle, the reply's not: the flow is alive
	 * (the later direction counts), whichever direction a packet takes.
	 */
	assert_int_equal(ct_get(e, k, &v), 0);
	assert_true(v.d[1].last_ns > 0);
	v.d[0].last_ns = now - ZT_CT_UDP_TIMEOUT_NS - 1000000000ULL;
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(e->skel->maps.conntrack), &k, &v, 0), 0);
	assert_int_equal(from_pod(e, udp4(&p, POD4, PEER4, 5353, 53)), TC_ACT_OK);
	assert_int_equal(e->n_ev, 1);
	assert_int_equal(ct_get(e, k, &v), 0);
	v.d[0].last_ns = now - 1000000000ULL;
	v.d[1].last_ns = now - ZT_CT_UDP_TIMEOUT_NS - 1000000000ULL;
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(e->skel->maps.conntrack), &k, &v, 0), 0);
	assert_int_equal(to_pod(e, udp4(&p, PEER4, POD4, 53, 5353)), TC_ACT_OK);
	assert_int_equal(e->n_ev, 1);
	/* 61 s idle: the reply is a new flow in the ingress direction, denied. */
	assert_int_equal(ct_get(e, k, &v), 0);
	ct_idle_since(&v, now - ZT_CT_UDP_TIMEOUT_NS - 1000000000ULL);
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(e->skel->maps.conntrack), &k, &v, 0), 0);
	assert_int_equal(to_pod(e, udp4(&p, PEER4, POD4, 53, 5353)), TC_ACT_SHOT);
	assert_int_equal(e->n_ev, 2);
	ev_check(e, 1,
		 (struct ev_want){ ZT_VERDICT_DENY, 0, ZT_REASON_NO_RULE, ZT_DIR_INGRESS, 0,
				   ISO_RULE, PEER_ID, 1 });
}

/* The same tuple on two endpoints: two flows, each with its own verdict. */
static void test_ct_per_endpoint(void **state)
{
	struct env *e = *state;
	struct pg_pkt p;

	std_setup(e);
	/* The peer is a local endpoint too, isolated, on if_pod2. */
	ep_add(e, if_pod2, POD2_EP, PEER_ID);
	iso_add(e, 1, ZT_DIR_INGRESS, PEER_ID, 1, 1, 0, 901, 901);
	allow_port(e, 1, ZT_DIR_EGRESS, PEER_ID, IPPROTO_TCP, 443, 11);
	tcp4(&p, POD4, PEER4, 40000, 443, TCP_SYN);
	assert_int_equal(from_pod(e, &p), TC_ACT_OK);
	assert_int_equal(run_on(e, e->skel->progs.tc_to_pod, if_pod2, &p), TC_ACT_SHOT);
	assert_int_equal(e->n_ev, 2);
	assert_int_equal(e->ev[1].ifindex, if_pod2);
	assert_int_equal(e->ev[1].dir, ZT_DIR_INGRESS);
	assert_int_equal(e->ev[1].local_id, PEER_ID);
	assert_int_equal(e->ev[1].ep_id, POD2_EP);
	assert_int_equal(e->ev[1].peer_id, POD_ID);
	assert_int_equal(e->ev[1].peer_ep_id, POD_EP);
	assert_int_equal(e->ev[1].rule_id, 901);
	assert_int_equal(ct_count(e), 2);
}

/* A TCP packet that is not a SYN and matches no entry is evaluated as a new flow. */
static void test_tcp_midstream_is_new_flow(void **state)
{
	struct env *e = *state;
	struct zt_ct_val v;
	struct pg_pkt p;

	std_setup(e);
	allow_port(e, 1, ZT_DIR_EGRESS, PEER_ID, IPPROTO_TCP, 443, 11);
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 40000, 443, TCP_ACK | TCP_PSH)),
			 TC_ACT_OK);
	assert_int_equal(e->n_ev, 1);
	assert_int_equal(e->ev[0].tcp_flags, TCP_ACK | TCP_PSH);
	assert_int_equal(ct_get(e, ct_key(if_pod, IPPROTO_TCP, POD4, PEER4, 40000, 443), &v), 0);
	assert_int_equal(v.state, ZT_CT_NEW);
	assert_int_equal(v.flags_seen[0], TCP_ACK | TCP_PSH);
	/* Mid-stream towards the pod: ingress is isolated, denied. */
	assert_int_equal(to_pod(e, tcp4(&p, PEER4, POD4, 443, 40001, TCP_ACK)), TC_ACT_SHOT);
	ev_check(e, 1,
		 (struct ev_want){ ZT_VERDICT_DENY, 0, ZT_REASON_NO_RULE, ZT_DIR_INGRESS, 0,
				   ISO_RULE, PEER_ID, 1 });
}

/* VLAN tags in front of IP change nothing. */
static void test_vlan_tagged(void **state)
{
	struct env *e = *state;
	struct pg_spec g = { .tpid = { ETH_P_8021Q },
			     .vid = { 100 },
			     .family = 4,
			     .src = POD4,
			     .dst = PEER4,
			     .proto = IPPROTO_UDP,
			     .sport = 5353,
			     .dport = 53,
			     .payload = 8 };
	struct pg_pkt p;

	std_setup(e);
	allow_port(e, 1, ZT_DIR_EGRESS, PEER_ID, IPPROTO_UDP, 53, 17);
	assert_int_equal(pg_build(&g, &p), 0);
	assert_int_equal(from_pod(e, &p), TC_ACT_OK);
	g.dport = 54;
	assert_int_equal(pg_build(&g, &p), 0);
	assert_int_equal(from_pod(e, &p), TC_ACT_SHOT);
	assert_int_equal(e->n_ev, 2);
	assert_int_equal(e->ev[0].dport, 53);
	assert_int_equal(e->ev[1].dport, 54);
}

/* Bytes are counted per verdict slot and per flow direction. */
static void test_stats_bytes(void **state)
{
	struct env *e = *state;
	struct pg_pkt a, b, c;
	__u64 st[ZT_TCS_MAX] = { [ZT_TCS_ALLOW_NEW] = 1,
				 [ZT_TCS_ALLOW_EST] = 1,
				 [ZT_TCS_DENY_NEW] = 1,
				 [ZT_TCS_NO_ENDPOINT] = 1 };

	std_setup(e);
	allow_port(e, 1, ZT_DIR_EGRESS, PEER_ID, IPPROTO_UDP, 53, 17);
	assert_int_equal(from_pod(e, udp4(&a, POD4, PEER4, 5353, 53)), TC_ACT_OK);
	assert_int_equal(
		to_pod(e, mk(&b, (struct pspec){ 4, IPPROTO_UDP, PEER4, POD4, 53, 5353, 0, 300 })),
		TC_ACT_OK);
	assert_int_equal(from_pod(e, tcp4(&c, POD4, PEER4, 1, 2, TCP_SYN)), TC_ACT_SHOT);
	assert_int_equal(run_on(e, e->skel->progs.tc_from_pod, if_unreg, &a), TC_ACT_OK);
	check_stats(e, st);
	assert_int_equal(stat_of(e, ZT_TCS_ALLOW_NEW).bytes, ip_len(a));
	assert_int_equal(stat_of(e, ZT_TCS_ALLOW_EST).bytes, ip_len(b));
	assert_int_equal(stat_of(e, ZT_TCS_DENY_NEW).bytes, ip_len(c));
	assert_int_equal(stat_of(e, ZT_TCS_NO_ENDPOINT).bytes, a.len);
}

/*
 * Conntrack looks up the likelier direction first (a packet from the lower
 * port to the higher: a reply). A flow opened from a low port to a high one
 * has both guesses wrong; its packets still find their entry, either way.
 */
static void test_reply_from_higher_port(void **state)
{
	struct env *e = *state;
	struct zt_ct_val v;
	struct pg_pkt p;

	std_setup(e);
	allow_port(e, 1, ZT_DIR_EGRESS, PEER_ID, IPPROTO_UDP, 5353, 17);
	allow_port(e, 1, ZT_DIR_EGRESS, PEER_ID, IPPROTO_TCP, 40000, 18);
	assert_int_equal(from_pod(e, udp4(&p, POD4, PEER4, 53, 5353)), TC_ACT_OK);
	assert_int_equal(to_pod(e, udp4(&p, PEER4, POD4, 5353, 53)), TC_ACT_OK);
	assert_int_equal(from_pod(e, udp4(&p, POD4, PEER4, 53, 5353)), TC_ACT_OK);
	assert_int_equal(e->n_ev, 1);
	assert_int_equal(ct_get(e, ct_key(if_pod, IPPROTO_UDP, POD4, PEER4, 53, 5353), &v), 0);
	assert_int_equal(v.d[0].packets, 2);
	assert_int_equal(v.d[1].packets, 1);
	assert_int_equal(v.state, ZT_CT_ESTABLISHED);

	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 80, 40000, TCP_SYN)), TC_ACT_OK);
	assert_int_equal(to_pod(e, tcp4(&p, PEER4, POD4, 40000, 80, TCP_SYN | TCP_ACK)), TC_ACT_OK);
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 80, 40000, TCP_ACK)), TC_ACT_OK);
	assert_int_equal(e->n_ev, 2);
	assert_int_equal(ct_get(e, ct_key(if_pod, IPPROTO_TCP, POD4, PEER4, 80, 40000), &v), 0);
	assert_int_equal(v.d[0].packets, 2);
	assert_int_equal(v.d[1].packets, 1);
	assert_int_equal(v.state, ZT_CT_ESTABLISHED);
	assert_int_equal(v.hs_done, 1);
}

/* ---- ICMP ---- */

static void test_icmp_echo_reply_matches(void **state)
{
	struct env *e = *state;
	struct zt_ct_val v;
	struct pg_pkt p;

	std_setup(e);
	/* Policy port of ICMP is 0. */
	allow_port(e, 1, ZT_DIR_EGRESS, PEER_ID, IPPROTO_ICMP, 0, 18);
	assert_int_equal(from_pod(e, mk(&p, (struct pspec){ 4, IPPROTO_ICMP, POD4, PEER4, 8, 0,
							    0x1234, 16 })),
			 TC_ACT_OK);
	ev_tuple(ev_check(e, 0,
			  (struct ev_want){ ZT_VERDICT_ALLOW, 0, ZT_REASON_RULE_ALLOW,
					    ZT_DIR_EGRESS, 0, 18, PEER_ID, 1 }),
		 IPPROTO_ICMP, POD4, PEER4, 0x1234, 0x1234);
	assert_int_equal(ct_get(e, ct_key(if_pod, IPPROTO_ICMP, POD4, PEER4, 0x1234, 0x1234), &v),
			 0);
	/* The opening packet's type (+ 1): a request, which the sweep may take as a probe. */
	assert_int_equal(v.icmp_type1, 8 + 1);
	assert_int_equal(
		to_pod(e, mk(&p, (struct pspec){ 4, IPPROTO_ICMP, PEER4, POD4, 0, 0, 0x1234, 16 })),
		TC_ACT_OK);
	assert_int_equal(e->n_ev, 1);
	assert_int_equal(ct_get(e, ct_key(if_pod, IPPROTO_ICMP, POD4, PEER4, 0x1234, 0x1234), &v),
			 0);
	assert_int_equal(v.d[1].packets, 1);
	assert_int_equal(v.state, ZT_CT_ESTABLISHED);
	/* A reply with another identifier belongs to no flow: a new, denied one. */
	assert_int_equal(
		to_pod(e, mk(&p, (struct pspec){ 4, IPPROTO_ICMP, PEER4, POD4, 0, 0, 0x1235, 16 })),
		TC_ACT_SHOT);
	assert_int_equal(e->n_ev, 2);
	/* Other ICMP (unreachable) has ports 0 and is its own flow. */
	assert_int_equal(
		to_pod(e, mk(&p, (struct pspec){ 4, IPPROTO_ICMP, PEER4, POD4, 3, 3, 0x1234, 16 })),
		TC_ACT_SHOT);
	assert_int_equal(e->ev[2].sport, 0);
	assert_int_equal(e->ev[2].dport, 0);
	assert_int_equal(ct_get(e, ct_key(if_pod, IPPROTO_ICMP, PEER4, POD4, 0, 0), &v), 0);
	assert_int_equal(v.icmp_type1, 3 + 1); /* an error: never a probe */
	assert_int_equal(v.flags_seen[0], 0);
}

static void test_icmp6_echo(void **state)
{
	struct env *e = *state;
	struct zt_ct_val v;
	struct pg_pkt p;

	std_setup(e);
	allow_port(e, 1, ZT_DIR_INGRESS, PEER_ID, IPPROTO_ICMPV6, 0, 19);
	assert_int_equal(
		to_pod(e, mk(&p, (struct pspec){ 6, IPPROTO_ICMPV6, PEER6, POD6, 128, 0, 77, 16 })),
		TC_ACT_OK);
	ev_tuple(ev_check(e, 0,
			  (struct ev_want){ ZT_VERDICT_ALLOW, 0, ZT_REASON_RULE_ALLOW,
					    ZT_DIR_INGRESS, 0, 19, PEER_ID, 1 }),
		 IPPROTO_ICMPV6, PEER6, POD6, 77, 77);
	assert_int_equal(from_pod(e, mk(&p, (struct pspec){ 6, IPPROTO_ICMPV6, POD6, PEER6, 129, 0,
							    77, 16 })),
			 TC_ACT_OK);
	assert_int_equal(e->n_ev, 1);
	assert_int_equal(ct_get(e, ct_key(if_pod, IPPROTO_ICMPV6, PEER6, POD6, 77, 77), &v), 0);
	assert_int_equal(v.icmp_type1, 128 + 1);
	/* The pod's own ping out is egress, which no rule allows. */
	assert_int_equal(from_pod(e, mk(&p, (struct pspec){ 6, IPPROTO_ICMPV6, POD6, PEER6, 128, 0,
							    78, 16 })),
			 TC_ACT_SHOT);
}

/* ---- IPv6 ---- */

static void test_ipv6_tcp_allow_deny_reply(void **state)
{
	struct env *e = *state;
	const struct zt_ev_policy *ev;
	struct zt_ct_val v;
	struct pg_pkt p;

	std_setup(e);
	allow_port(e, 1, ZT_DIR_INGRESS, PEER_ID, IPPROTO_TCP, 443, 91);
	assert_int_equal(to_pod(e, tcp6(&p, PEER6, POD6, 50000, 443, TCP_SYN)), TC_ACT_OK);
	ev = ev_check(e, 0,
		      (struct ev_want){ ZT_VERDICT_ALLOW, 0, ZT_REASON_RULE_ALLOW, ZT_DIR_INGRESS,
					0, 91, PEER_ID, 1 });
	ev_tuple(ev, IPPROTO_TCP, PEER6, POD6, 50000, 443);
	assert_int_equal(ev->peer_ep_id, PEER_EP);
	assert_int_equal(from_pod(e, tcp6(&p, POD6, PEER6, 443, 50000, TCP_SYN | TCP_ACK)),
			 TC_ACT_OK);
	assert_int_equal(e->n_ev, 1);
	assert_int_equal(ct_get(e, ct_key(if_pod, IPPROTO_TCP, PEER6, POD6, 50000, 443), &v), 0);
	assert_int_equal(v.state, ZT_CT_SYN_RECV);
	assert_int_equal(to_pod(e, tcp6(&p, PEER6, POD6, 50000, 443, TCP_ACK)), TC_ACT_OK);
	assert_int_equal(ct_get(e, ct_key(if_pod, IPPROTO_TCP, PEER6, POD6, 50000, 443), &v), 0);
	assert_int_equal(v.state, ZT_CT_ESTABLISHED);
	assert_int_equal(to_pod(e, tcp6(&p, PEER6, POD6, 50000, 444, TCP_SYN)), TC_ACT_SHOT);
	ev_check(e, 1,
		 (struct ev_want){ ZT_VERDICT_DENY, 0, ZT_REASON_NO_RULE, ZT_DIR_INGRESS, 0,
				   ISO_RULE, PEER_ID, 1 });
}

static void test_ipv6_ipblock_and_ext_headers(void **state)
{
	struct env *e = *state;
	struct pg_spec g = { .family = 6,
			     .src = POD6,
			     .dst = "2001:db8:aaaa::5",
			     .proto = IPPROTO_UDP,
			     .n_ext = 2,
			     .ext = { IPPROTO_HOPOPTS, IPPROTO_DSTOPTS },
			     .sport = 1000,
			     .dport = 4789,
			     .payload = 8 };
	struct pg_pkt p;

	std_setup(e);
	ipc_add(e, 1, "2001:db8::/32", CIDR_ID1, 0);
	ipc_add(e, 1, "2001:db8:aaaa::/48", CIDR_ID2, 0);
	allow_port(e, 1, ZT_DIR_EGRESS, CIDR_ID1, IPPROTO_UDP, 4789, 92);
	assert_int_equal(pg_build(&g, &p), 0);
	assert_int_equal(from_pod(e, &p), TC_ACT_SHOT); /* in the except: CIDR_ID2 */
	assert_int_equal(e->ev[0].peer_id, CIDR_ID2);
	g.dst = "2001:db8:bbbb::5";
	assert_int_equal(pg_build(&g, &p), 0);
	assert_int_equal(from_pod(e, &p), TC_ACT_OK);
	ev_check(e, 1,
		 (struct ev_want){ ZT_VERDICT_ALLOW, 0, ZT_REASON_RULE_ALLOW, ZT_DIR_EGRESS, 0, 92,
				   CIDR_ID1, 1 });
	assert_int_equal(e->ev[1].dport, 4789);
}

/* ---- fragments ---- */

static void test_later_fragment_port0(void **state)
{
	struct env *e = *state;
	struct pg_spec g = { .family = 4,
			     .src = POD4,
			     .dst = PEER4,
			     .proto = IPPROTO_UDP,
			     .ip4_frag = 185,
			     .payload = 16 };
	struct pg_pkt p;

	std_setup(e);
	allow_port(e, 1, ZT_DIR_EGRESS, PEER_ID, IPPROTO_UDP, 53, 17);
	assert_int_equal(from_pod(e, udp4(&p, POD4, PEER4, 5353, 53)), TC_ACT_OK);
	/* The later fragment carries no ports: a flow of its own with port 0. */
	assert_int_equal(pg_build(&g, &p), 0);
	assert_int_equal(from_pod(e, &p), TC_ACT_SHOT);
	assert_int_equal(e->n_ev, 2);
	assert_int_equal(e->ev[1].sport, 0);
	assert_int_equal(e->ev[1].dport, 0);
	/* Allowed when the policy allows port 0 of the protocol. */
	allow_port(e, 1, ZT_DIR_EGRESS, PEER_ID, IPPROTO_UDP, 0, 18);
	g.src = POD4;
	g.dst = WORLD4;
	ipc_add(e, 1, WORLD4 "/32", PEER_ID, 0);
	assert_int_equal(pg_build(&g, &p), 0);
	assert_int_equal(from_pod(e, &p), TC_ACT_OK);
}

/* ---- events ---- */

/* Many packets of several flows: one event per flow, in order, none lost. */
static void test_one_event_per_flow(void **state)
{
	struct env *e = *state;
	struct pg_pkt p;
	int i, j;

	std_setup(e);
	allow_port(e, 1, ZT_DIR_EGRESS, PEER_ID, IPPROTO_TCP, 443, 11);
	for (i = 0; i < 10; i++)
		for (j = 0; j < 5; j++) {
			assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, (int)(30000 + i), 443,
							  j ? TCP_ACK : TCP_SYN)),
					 TC_ACT_OK);
			assert_int_equal(
				to_pod(e, tcp4(&p, PEER4, POD4, 443, (int)(30000 + i), TCP_ACK)),
				TC_ACT_OK);
		}
	assert_int_equal(e->n_ev, 10);
	for (i = 0; i < 10; i++) {
		ev_tuple(ev_check(e, i,
				  (struct ev_want){ ZT_VERDICT_ALLOW, 0, ZT_REASON_RULE_ALLOW,
						    ZT_DIR_EGRESS, 0, 11, PEER_ID, 1 }),
			 IPPROTO_TCP, POD4, PEER4, (__u16)(30000 + i), 443);
		assert_int_equal(e->ev[i].tcp_flags, TCP_SYN);
		assert_true(e->ev[i].hdr.ts_ns > 0);
		assert_true(i == 0 || e->ev[i].hdr.ts_ns >= e->ev[i - 1].hdr.ts_ns);
	}
	assert_int_equal(evstat(e, ZT_EVS_EMITTED), 10);
	assert_int_equal(evstat(e, ZT_EVS_RESERVE_FAILED), 0);
	assert_int_equal(ct_count(e), 10);
	assert_int_equal(stat_of(e, ZT_TCS_ALLOW_EST).packets, 90);
}

/* With the ring full, verdicts still apply and the lost records are counted. */
static void test_ring_full_counted(void **state)
{
	struct env *e = *state;
	int i, n = 700; /* 4 KiB ring: about 39 records of 104 bytes */

	/* A ring of one page, and nobody reading it. */
	ring_buffer__free(e->rb);
	e->rb = NULL;
	tc_endpoint__destroy(e->skel);
	e->skel = tc_endpoint__open();
	assert_non_null(e->skel);
	{
		struct bpf_map *map;

		bpf_object__for_each_map (map, e->skel->obj)
			assert_int_equal(bpf_map__set_pin_path(map, NULL), 0);
	}
	bpf_map__set_max_entries(e->skel->maps.events, 4096);
	assert_int_equal(tc_endpoint__load(e->skel), 0);
	e->rb = ring_buffer__new(bpf_map__fd(e->skel->maps.events), on_event, e, NULL);
	assert_non_null(e->rb);

	std_setup(e);
	for (i = 0; i < n; i++) {
		struct pg_pkt q;
		struct __sk_buff ctx = { .ifindex = if_pod };
		LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = q.buf, .ctx_in = &ctx,
			    .ctx_size_in = sizeof(ctx), .repeat = 1);

		tcp4(&q, POD4, PEER4, 10000 + i, 80, TCP_SYN);
		o.data_size_in = (__u32)q.len;
		assert_int_equal(
			bpf_prog_test_run_opts(bpf_program__fd(e->skel->progs.tc_from_pod), &o), 0);
		assert_int_equal(o.retval, TC_ACT_SHOT);
	}
	assert_true(evstat(e, ZT_EVS_RESERVE_FAILED) > 0);
	assert_int_equal(evstat(e, ZT_EVS_EMITTED) + evstat(e, ZT_EVS_RESERVE_FAILED), n);
	ring_buffer__consume(e->rb);
	assert_int_equal(e->n_ev, evstat(e, ZT_EVS_EMITTED));
	assert_int_equal(stat_of(e, ZT_TCS_DENY_NEW).packets, n);
}

/* ---- setup ---- */

static int ifindex_of(const char *name)
{
	unsigned int i = if_nametoindex(name);

	if (!i)
		fprintf(stderr, "test_tc_endpoint: no interface %s: %s\n", name, strerror(errno));
	return (int)i;
}

/* ---- flow features, endpoint activity, verified clients, captures ---- */

static struct pg_pkt *tcp4p(struct pg_pkt *p, const char *src, const char *dst, int sport,
			    int dport, int flags, int payload)
{
	return mk(p, (struct pspec){ 4, IPPROTO_TCP, src, dst, sport, dport, flags, payload });
}

static void sleep_ms(int ms)
{
	usleep((useconds_t)ms * 1000);
}

/* The window a TCP segment advertises, as a packet of the test's makes it. */
static struct pg_pkt *tcp_window(struct pg_pkt *p, int window)
{
	pg_put16(p->buf + p->off[PG_L4] + 14, (uint16_t)window);
	return p;
}

/*
 * zero_win counts the opener's pure ACKs that close its window (a slow
 * read's), saturating: not one with payload, not one that advertises a
 * window, not the server's.
 */
static void test_ct_zero_window(void **state)
{
	struct env *e = *state;
	struct zt_ct_key k = ct_key(if_pod, IPPROTO_TCP, PEER4, POD4, 41000, 8080);
	struct zt_ct_val v;
	struct pg_pkt p;

	std_setup(e);
	allow_port(e, 1, ZT_DIR_INGRESS, PEER_ID, IPPROTO_TCP, 8080, 21);
	assert_int_equal(to_pod(e, tcp_window(tcp4p(&p, PEER4, POD4, 41000, 8080, TCP_SYN, 0), 0)),
			 TC_ACT_OK);
	from_pod(e, tcp4p(&p, POD4, PEER4, 8080, 41000, TCP_SYN | TCP_ACK, 0));
	to_pod(e, tcp4p(&p, PEER4, POD4, 41000, 8080, TCP_ACK, 0));
	to_pod(e, tcp4p(&p, PEER4, POD4, 41000, 8080, TCP_ACK | TCP_PSH, 300));
	from_pod(e, tcp4p(&p, POD4, PEER4, 8080, 41000, TCP_ACK | TCP_PSH, 400));
	assert_int_equal(ct_get(e, k, &v), 0);
	assert_int_equal(v.zero_win, 0); /* a SYN's zero window is none */
	/* The server's pure ACK with a zero window: the reply direction. */
	from_pod(e, tcp_window(tcp4p(&p, POD4, PEER4, 8080, 41000, TCP_ACK, 0), 0));
	/* The client's data with a zero window, and a pure ACK with an open one. */
	to_pod(e, tcp_window(tcp4p(&p, PEER4, POD4, 41000, 8080, TCP_ACK | TCP_PSH, 10), 0));
	to_pod(e, tcp_window(tcp4p(&p, PEER4, POD4, 41000, 8080, TCP_ACK, 0), 20));
	assert_int_equal(ct_get(e, k, &v), 0);
	assert_int_equal(v.zero_win, 0);
	/* The client closes its window: the answers to the server's probes. */
	for (int i = 0; i < 300; i++)
		assert_int_equal(
			to_pod(e, tcp_window(tcp4p(&p, PEER4, POD4, 41000, 8080, TCP_ACK, 0), 0)),
			TC_ACT_OK);
	assert_int_equal(ct_get(e, k, &v), 0);
	assert_int_equal(v.zero_win, 255);
	assert_int_equal(v.ack_only[0], 302);
}

/* A packet of the test's whose payload starts with text. */
static struct pg_pkt *with_text(struct pg_pkt *p, const char *text)
{
	size_t n = strlen(text);

	assert_true(p->off[PG_PAYLOAD] + n <= p->len);
	memcpy(p->buf + p->off[PG_PAYLOAD], text, n);
	return p;
}

/*
 * refused counts the server's responses that begin with an authentication
 * refusal in the clear (lib/refusal.h): the first payload after the
 * opener's, only; HTTP 401 and 407, FTP 530, SMTP 535, POP3 -ERR, Redis
 * -WRONGPASS, IMAP's tagged NO of a refused login; not a
 * 200, a 403, a 230, a reply cut shorter than its code, the opener's own
 * bytes, an IMAP NO about anything else or with a tag too long to be
 * read; saturating; since the last response that served what was asked
 * (a 200, a 230). resp says whether a login was refused since then.
 */
static void test_ct_refused_logins(void **state)
{
	static const struct {
		const char *text;
		int len, counts, serves;
	} r[] = {
		{ "HTTP/1.1 401 Unauthorized\r\n", 377, 1, 0 },
		{ "HTTP/1.1 200 OK\r\n", 900, 0, 1 },
		{ "HTTP/1.0 407 Proxy Authentication Required\r\n", 300, 1, 0 },
		{ "HTTP/1.1 403 Forbidden\r\n", 300, 0, 0 },
		{ "530 Login incorrect.\r\n", 22, 1, 0 },
		{ "530-multi\r\n", 11, 1, 0 },
		{ "535 5.7.8 Authentication credentials invalid\r\n", 47, 1, 0 },
		{ "-ERR [AUTH] Authentication failed.\r\n", 36, 1, 0 },
		{ "-WRONGPASS invalid username-password pair or user is disabled.\r\n", 64, 1, 0 },
		/* -ERR only when it speaks of a login: POP3 and Redis answer any failure so. */
		{ "-ERR invalid password\r\n", 23, 1, 0 }, /* Redis before 6 */
		{ "-ERR Login failed.\r\n", 20, 1, 0 }, /* Courier */
		{ "-ERR Logon failure: unknown user name or bad password.\r\n", 56, 1, 0 },
		{ "-ERR Client sent AUTH, but no password is set\r\n", 47, 1, 0 },
		{ "-ERR unknown command 'FOO', with args beginning with: \r\n", 56, 0, 0 },
		{ "-ERR value is not an integer or out of range\r\n", 46, 0, 0 },
		{ "-ERR no such message\r\n", 22, 0, 0 },
		{ "-ERR\r\n+OK user\r\n", 16, 0, 0 }, /* the line ends before a word */
		{ "-ERR x", 6, 0, 0 },
		{ "+OK\r\n", 5, 0, 0 },
		{ "+PONG\r\n", 7, 0, 0 }, /* after refusals: serves nothing */
		{ "230 Login successful.\r\n", 23, 0, 1 },
		{ "331 Please specify the password.\r\n", 34, 0, 0 },
		{ "530", 3, 0, 0 }, /* cut shorter than a reply code and its separator */
		{ "HTTP/1.1 40", 11, 0, 0 }, /* a status line cut before its code ends */
		{ "-ERR [AUTH] Authentication failed.\r\n", 36, 1, 0 },
		{ "HTTP/1.1 40", 11, 0, 0 },
		/* IMAP (RFC 9051, RFC 5530 codes), as Dovecot, Courier, Exchange and Cyrus say it. */
		{ "a001 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n", 55, 1, 0 },
		{ "1 OK [CAPABILITY IMAP4rev1] Logged in\r\n", 40, 0, 0 },
		{ "7 NO [AUTHORIZATIONFAILED] Not allowed\r\n", 41, 1, 0 },
		{ "A0000012 NO Login failed.\r\n", 28, 1, 0 },
		{ "x NO LOGIN failed.\r\n", 21, 1, 0 },
		{ "c3 NO Authentication failed\r\n", 29, 1, 0 },
		{ "c3 NO Authentication mechanism unsupported\r\n", 45, 0, 0 },
		{ "a002 NO [TRYCREATE] Mailbox doesn't exist: Sent\r\n", 50, 0, 0 },
		{ "a003 NO [OVERQUOTA] Quota exceeded\r\n", 37, 0, 0 },
		{ "a004 NO Login\r\n", 15, 0, 0 }, /* cut before the words end */
		{ "* NO [ALERT] Disk is 99% full\r\n", 32, 0, 0 },
		{ "abcdefghijklm NO [AUTHENTICATIONFAILED] x\r\n", 44, 0, 0 }, /* tag of 13 */
		{ "abcdefghijkl NO [AUTHENTICATIONFAILED] x\r\n", 43, 1, 0 }, /* tag of 12 */
		{ "a\x01b NO [AUTHENTICATIONFAILED] x\r\n", 36, 0, 0 }, /* no tag */
		{ "a005 BAD Error in IMAP command\r\n", 33, 0, 0 },
	};
	struct env *e = *state;
	struct zt_ct_key k = ct_key(if_pod, IPPROTO_TCP, PEER4, POD4, 41000, 8080);
	struct zt_ct_val v;
	struct pg_pkt p;
	int want = 0, last = 0;

	std_setup(e);
	allow_port(e, 1, ZT_DIR_INGRESS, PEER_ID, IPPROTO_TCP, 8080, 12);
	to_pod(e, tcp4p(&p, PEER4, POD4, 41000, 8080, TCP_SYN, 0));
	from_pod(e, tcp4p(&p, POD4, PEER4, 8080, 41000, TCP_SYN | TCP_ACK, 0));
	to_pod(e, tcp4p(&p, PEER4, POD4, 41000, 8080, TCP_ACK, 0));
	/* The opener's own bytes, and the server's before it asked anything: none. */
	to_pod(e, with_text(tcp4p(&p, PEER4, POD4, 41000, 8080, TCP_ACK | TCP_PSH, 100),
			    "HTTP/1.1 401 x"));
	assert_int_equal(ct_get(e, k, &v), 0);
	assert_int_equal(v.resp, ZT_CT_RESP_DUE);
	from_pod(e, with_text(tcp4p(&p, POD4, PEER4, 8080, 41000, TCP_ACK | TCP_PSH, 200),
			      "HTTP/1.1 200 OK\r\n"));
	from_pod(e, with_text(tcp4p(&p, POD4, PEER4, 8080, 41000, TCP_ACK | TCP_PSH, 200),
			      "HTTP/1.1 401 Unauthorized\r\n"));
	assert_int_equal(ct_get(e, k, &v), 0);
	assert_int_equal(v.refused, 0);
	assert_int_equal(v.resp, ZT_CT_RESP_SERVED); /* the 200, kept for the session */
	for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++) {
		to_pod(e, tcp4p(&p, PEER4, POD4, 41000, 8080, TCP_ACK | TCP_PSH, 60));
		/* The opener's pure ACK (no payload) starts nothing. */
		to_pod(e, tcp4p(&p, PEER4, POD4, 41000, 8080, TCP_ACK, 0));
		assert_int_equal(from_pod(e, with_text(tcp4p(&p, POD4, PEER4, 8080, 41000,
							     TCP_ACK | TCP_PSH, r[i].len),
						       r[i].text)),
				 TC_ACT_OK);
		/* The rest of the response: not its start. */
		from_pod(e, with_text(tcp4p(&p, POD4, PEER4, 8080, 41000, TCP_ACK | TCP_PSH, 40),
				      "530 Login incorrect.\r\n"));
		/* A run: what serves ends it (a login's challenges, or one got in). */
		want = r[i].serves ? 0 : want + r[i].counts;
		assert_int_equal(ct_get(e, k, &v), 0);
		if (v.refused != want)
			fail_msg("\"%s\": refused %u, want %d", r[i].text, v.refused, want);
		/*
		 * Refused since a refusal, until a response serves (a challenge
		 * answered ends without it); what serves nothing leaves it.
		 */
		if (r[i].counts || r[i].serves)
			last = r[i].counts;
		if (v.resp != ((last ? ZT_CT_RESP_REFUSED : 0) | ZT_CT_RESP_SERVED))
			fail_msg("\"%s\": resp %#x", r[i].text, v.resp);
	}
	for (int i = 0; i < 300; i++) {
		to_pod(e, tcp4p(&p, PEER4, POD4, 41000, 8080, TCP_ACK | TCP_PSH, 60));
		from_pod(e, with_text(tcp4p(&p, POD4, PEER4, 8080, 41000, TCP_ACK | TCP_PSH, 22),
				      "530 Login incorrect.\r\n"));
	}
	assert_int_equal(ct_get(e, k, &v), 0);
	assert_int_equal(v.refused, 255);
}

/* A 32-bit field of a TCP header (off: its offset), as a packet of the test's makes it. */
static struct pg_pkt *tcp_put32(struct pg_pkt *p, unsigned int off, uint32_t v)
{
	uint8_t *b = p->buf + p->off[PG_L4] + off;

	pg_put16(b, (uint16_t)(v >> 16));
	pg_put16(b + 2, (uint16_t)v);
	return p;
}

/* The acknowledgment a TCP segment carries. */
static struct pg_pkt *tcp_ackno(struct pg_pkt *p, uint32_t ack)
{
	return tcp_put32(p, 8, ack);
}

/*
 * An SSH server's answers, by their sizes (struct zt_ssh_auth): sessions
 * into a pod's port 22 as dropbear answered hydra, OpenSSH a client that
 * got in, and a server that is no SSH server. The server's first payload
 * decides, whichever side spoke first; every later one of the server's
 * counts, none of the client's. After the server's segment i the client
 * sends req[i] bytes (84 without req), which the server's next segment
 * acknowledges: the request it answers.
 */
static void ssh_session(struct env *e, int port, const int *srv, int n_srv, const int *req,
			int banner_first, struct zt_ct_val *v)
{
	struct zt_ct_key k = ct_key(if_pod, IPPROTO_TCP, WORLD4, POD4, port, 22);
	uint32_t acked = 1000;
	struct pg_pkt p;

	to_pod(e, tcp4p(&p, WORLD4, POD4, port, 22, TCP_SYN, 0));
	from_pod(e, tcp4p(&p, POD4, WORLD4, 22, port, TCP_SYN | TCP_ACK, 0));
	to_pod(e, tcp4p(&p, WORLD4, POD4, port, 22, TCP_ACK, 0));
	if (!banner_first) {
		to_pod(e, with_text(tcp4p(&p, WORLD4, POD4, port, 22, TCP_ACK | TCP_PSH, 23),
				    "SSH-2.0-libssh_0.10.4\r\n"));
		acked += 23;
	}
	for (int i = 0; i < n_srv; i++) {
		int n = req ? req[i] : 84;

		tcp_ackno(tcp4p(&p, POD4, WORLD4, 22, port, TCP_ACK | TCP_PSH, srv[i]), acked);
		if (i == 0)
			with_text(&p, "SSH-2.0-dropbear_2022.83\r\n");
		assert_int_equal(from_pod(e, &p), TC_ACT_OK);
		/* The client's request, and its pure ACK: neither counts. */
		if (n)
			to_pod(e, tcp4p(&p, WORLD4, POD4, port, 22, TCP_ACK | TCP_PSH, n));
		to_pod(e, tcp4p(&p, WORLD4, POD4, port, 22, TCP_ACK, 0));
		acked += (uint32_t)n;
	}
	to_pod(e, tcp4p(&p, WORLD4, POD4, port, 22, TCP_FIN | TCP_ACK, 0));
	from_pod(e, tcp4p(&p, POD4, WORLD4, 22, port, TCP_FIN | TCP_ACK, 0));
	assert_int_equal(ct_get(e, k, v), 0);
	assert_int_equal(v->state, ZT_CT_CLOSED);
}

/* The guesses of the session from port refused as they were (ZT_EV_REFUSED), from event i on. */
static int ssh_refused_of(struct env *e, int i, int port)
{
	int n = 0;

	assert_true(e->n_sshr <= MAX_EVENTS);
	for (; i < e->n_sshr; i++) {
		const struct zt_ev_refused *r = &e->sshr[i];
		uint8_t world[16] = { 0 }, pod[16] = { 0 };

		inet_pton(AF_INET, WORLD4, world);
		inet_pton(AF_INET, POD4, pod);
		if (r->sport != port)
			continue;
		n++;
		assert_int_equal(r->kind, ZT_REFUSED_SSH);
		assert_int_equal(r->count, 1);
		/* The client, the server, the count so far, the session's start. */
		assert_int_equal(r->family, 4);
		assert_int_equal(r->origin, ZT_REFUSED_FROM_ENDPOINT);
		assert_int_equal(r->dport, 22);
		assert_memory_equal(r->saddr, world, 16);
		assert_memory_equal(r->daddr, pod, 16);
		assert_int_equal(r->refused, n);
		assert_true(r->first_ns > 0 && r->first_ns <= r->hdr.ts_ns);
	}
	return n;
}

static void test_ct_ssh_failures(void **state)
{
	/* dropbear and hydra: banner and KEXINIT, kex reply, service accept, none's failure, 9 more. */
	static const int hydra[] = { 538, 428, 44, 52, 52, 52, 52, 52, 52, 52, 52, 52, 52 };
	/*
	 * What hydra sent, as measured: KEXINIT and kex, NEWKEYS and the
	 * service request, "none", then passwords of 4 to 12 characters (8
	 * to 16 bytes more than "none" on the wire; the last one unanswered).
	 */
	static const int hydra_req[] = { 952, 60, 68, 76, 76, 76, 84, 84, 84, 84, 84, 84, 84 };
	/* The same, and a disconnect message after the last failure. */
	static const int bye[] = { 32, 900, 460, 44, 60, 60, 60, 60, 60, 60, 92 };
	/* A client that got in after two keys were refused: success, host keys, a channel, data. */
	static const int in[] = { 32, 900, 460, 44, 60, 60, 60, 28, 800, 36, 60, 120, 44, 36 };
	/*
	 * OpenSSH's client, as measured: "none", then an Ed25519, an ECDSA and
	 * an RSA key (72, 136 and 432 bytes more than "none"), then the key it
	 * signs with and its session.
	 */
	static const int in_req[] = {
		900, 60, 60, 68, 140, 204, 500, 600, 200, 300, 40, 40, 40, 40
	};
	/* ssh in BatchMode with keys the server refuses, none left: it gives up. */
	static const int keys[] = { 32, 900, 460, 44, 60, 60, 60, 60 };
	static const int keys_req[] = { 900, 60, 60, 68, 140, 204, 500, 0 };
	/* A client that sent "none" with the service request: no request of its own to size. */
	static const int piped_req[] = { 952, 128, 0, 76, 76, 76, 84, 84, 84, 84, 84, 84, 84 };
	/* Typing after getting in: the echoes start long after the first segments. */
	static const int typed[] = { 32,  900, 460, 44, 60, 28, 800, 36, 60, 120,
				     400, 36,  36,  36, 36, 36, 36,  36, 36, 80 };
	/*
	 * Only the key exchange (ssh-keyscan), and a bulk answer's segments of
	 * one size (a test packet holds at most PG_BUF bytes: 600 stands for 1448).
	 */
	static const int scan[] = { 32, 900, 460 };
	static const int bulk[] = { 32, 900, 460, 44, 600, 600, 600 };
	struct env *e = *state;
	struct zt_guard_cfg cfg = { .flags = ZT_GCF_ACTIVITY | ZT_GCF_PROBES, .probe_rate = 1000 };
	struct zt_ct_val v;
	__u32 zero = 0;
	int n0;

	std_setup(e);
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(e->skel->maps.guard_cfg), &zero, &cfg, 0),
			 0);
	allow_port(e, 1, ZT_DIR_INGRESS, ZT_ID_WORLD_V4, IPPROTO_TCP, 22, 13);

	/* hydra: each guess but "none" refused as it was, none left for the end. */
	ssh_session(e, 42000, hydra, 13, hydra_req, 0, &v);
	assert_int_equal(v.ssh.state, ZT_SSH_YES);
	assert_int_equal(v.ssh.segs, 12);
	assert_int_equal(v.ssh.run_len, 52);
	assert_int_equal(v.ssh.fails, 10);
	assert_int_equal(v.ssh.after, 0);
	assert_int_equal(v.ssh.base, 68);
	assert_int_equal(v.ssh.live, 9);
	assert_int_equal(ssh_refused_of(e, 0, 42000), 9);
	assert_int_equal(zt_ssh_auth_failed(&v.ssh), 0);
	assert_int_equal(zt_ssh_auth_live(&v.ssh), 9);
	/* The closing packet sent it whole to the brute-force detector. */
	assert_int_equal(e->n_ses, 1);
	assert_int_equal(zt_ssh_auth_live(&e->ses[e->n_ses - 1].val.ssh), 9);
	assert_int_equal(v.refused, 0);

	/* Probe events off: nothing goes out as it comes, the end counts all. */
	cfg.flags = ZT_GCF_ACTIVITY;
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(e->skel->maps.guard_cfg), &zero, &cfg, 0),
			 0);
	n0 = e->n_sshr;
	ssh_session(e, 42010, hydra, 13, hydra_req, 0, &v);
	assert_int_equal(e->n_sshr, n0);
	assert_int_equal(v.ssh.live, 0);
	assert_int_equal(zt_ssh_auth_failed(&v.ssh), 9);
	cfg.flags = ZT_GCF_ACTIVITY | ZT_GCF_PROBES;
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(e->skel->maps.guard_cfg), &zero, &cfg, 0),
			 0);

	/* Guesses of one size (84 each, "none" as well), then a disconnect message. */
	n0 = e->n_sshr;
	ssh_session(e, 42001, bye, 11, NULL, 1, &v);
	assert_int_equal(v.ssh.fails, 6);
	assert_int_equal(v.ssh.after, 1);
	assert_int_equal(ssh_refused_of(e, n0, 42001), 5);
	assert_int_equal(zt_ssh_auth_failed(&v.ssh), 0);
	assert_int_equal(zt_ssh_auth_live(&v.ssh), 5);

	/* Keys refused before one is taken: none is a guess, and the session got in. */
	n0 = e->n_sshr;
	ssh_session(e, 42002, in, 14, in_req, 1, &v);
	assert_int_equal(v.ssh.fails, 3);
	assert_int_equal(v.ssh.after, 7);
	assert_int_equal(e->n_sshr, n0);
	assert_int_equal(zt_ssh_auth_failed(&v.ssh), 0);
	/* Two passwords mistyped, then the right one: each refused as it was; it got in. */
	ssh_session(e, 42012, in, 14, NULL, 1, &v);
	assert_int_equal(ssh_refused_of(e, n0, 42012), 2);
	assert_int_equal(zt_ssh_auth_failed(&v.ssh), 0);
	assert_int_equal(zt_ssh_auth_live(&v.ssh), 0);

	/* Keys only, all refused (ssh in BatchMode): counted when the session ends, as before. */
	n0 = e->n_sshr;
	ssh_session(e, 42007, keys, 8, keys_req, 1, &v);
	assert_int_equal(e->n_sshr, n0);
	assert_int_equal(zt_ssh_auth_failed(&v.ssh), 3);
	assert_int_equal(zt_ssh_auth_live(&v.ssh), 0);

	/* "none" acknowledged with the service request: no base to size guesses by. */
	ssh_session(e, 42008, hydra, 13, piped_req, 0, &v);
	assert_int_equal(v.ssh.base, 0);
	assert_int_equal(e->n_sshr, n0);
	assert_int_equal(zt_ssh_auth_failed(&v.ssh), 9);

	ssh_session(e, 42003, typed, 20, NULL, 1, &v);
	assert_int_equal(v.ssh.fails, 0); /* the echoes were a run of 8, but late */
	assert_int_equal(zt_ssh_auth_failed(&v.ssh), 0);

	ssh_session(e, 42004, scan, 3, NULL, 0, &v);
	assert_int_equal(v.ssh.state, ZT_SSH_YES);
	assert_int_equal(zt_ssh_auth_failed(&v.ssh), 0);

	n0 = e->n_sshr;
	ssh_session(e, 42005, bulk, 7, NULL, 1, &v);
	assert_int_equal(v.ssh.run, 0); /* larger than an answer of authentication */
	assert_int_equal(zt_ssh_auth_failed(&v.ssh), 0);
	assert_int_equal(e->n_sshr, n0);

	/* A server whose first payload is no identification: nothing counted after it. */
	{
		struct zt_ct_key k = ct_key(if_pod, IPPROTO_TCP, WORLD4, POD4, 42006, 22);
		struct pg_pkt p;

		to_pod(e, tcp4p(&p, WORLD4, POD4, 42006, 22, TCP_SYN, 0));
		from_pod(e, tcp4p(&p, POD4, WORLD4, 22, 42006, TCP_SYN | TCP_ACK, 0));
		to_pod(e, tcp4p(&p, WORLD4, POD4, 42006, 22, TCP_ACK | TCP_PSH, 30));
		from_pod(e, with_text(tcp4p(&p, POD4, WORLD4, 22, 42006, TCP_ACK | TCP_PSH, 40),
				      "220 ready\r\n"));
		for (int i = 0; i < 5; i++)
			from_pod(e, with_text(tcp4p(&p, POD4, WORLD4, 22, 42006, TCP_ACK | TCP_PSH,
						    52),
					      "SSH-2.0-x\r\n"));
		assert_int_equal(ct_get(e, k, &v), 0);
		assert_int_equal(v.ssh.state, ZT_SSH_NO);
		assert_int_equal(v.ssh.segs, 0);
		assert_int_equal(zt_ssh_auth_failed(&v.ssh), 0);
	}
	assert_int_equal(e->bad_size, 0);
}

/*
 * Segments of no connection as they reach an endpoint (tc_tail_in,
 * zt_out_of_state): FIN/ACK and RST segments that find no flow count for
 * their source with the resets the node sends (scan_cells), and one
 * ZT_SIG_RESETS goes out when both its cells reach sig_src.resets, once a
 * window, naming the pod. A source's pure ACKs and SYNs open flows and
 * count nothing; nothing counts while the stage or the signal is off, or
 * on the way out of the pod.
 */
static void test_tail_out_of_state(void **state)
{
	struct env *e = *state;
	struct zt_guard_cfg cfg = { .flags = ZT_GCF_ACTIVITY,
				    .seed = 0x5eed,
				    .signal_rate = 1000,
				    .win_shift = 30,
				    .sig_src = { .resets = 5 } };
	uint8_t pod[16] = { 0 }, src[16] = { 0 };
	struct pg_pkt p;
	__u32 zero = 0;
	int fd;

	std_setup(e);
	fd = bpf_map__fd(e->skel->maps.guard_cfg);
	assert_int_equal(bpf_map_update_elem(fd, &zero, &cfg, 0), 0);
	allow_port(e, 1, ZT_DIR_INGRESS, ZT_ID_WORLD_V4, IPPROTO_TCP, 8080, 13);
	inet_pton(AF_INET, POD4, pod);
	inet_pton(AF_INET, "198.19.200.31", src);

	/* A FIN/ACK flood: the fifth segment signals, the rest of the window not again. */
	for (int i = 0; i < 12; i++) {
		assert_int_equal(to_pod(e, tcp4p(&p, "198.19.200.31", POD4, 30000 + i, 8080,
						 TCP_FIN | TCP_ACK, 0)),
				 TC_ACT_OK);
		assert_int_equal(e->n_act, i < 4 ? 0 : 1);
	}
	assert_int_equal(e->act[0].hdr.type, ZT_EV_SRC_ACTIVITY);
	assert_int_equal(e->act[0].signals, ZT_SIG_RESETS);
	assert_int_equal(e->act[0].resets, 5);
	assert_int_equal(e->act[0].family, 4);
	assert_int_equal(e->act[0].proto, IPPROTO_TCP);
	assert_memory_equal(e->act[0].addr, src, 16);
	assert_memory_equal(e->act[0].peer, pod, 16);
	/* An RST flood from another source, to a port the policy does not open. */
	for (int i = 0; i < 5; i++)
		to_pod(e, tcp4p(&p, "198.19.200.32", POD4, 31000 + i, 9999, TCP_RST, 0));
	assert_int_equal(e->n_act, 2);
	assert_int_equal(e->act[1].resets, 5);
	/* Pure ACKs and SYNs open flows: nothing counted. */
	for (int i = 0; i < 10; i++) {
		to_pod(e, tcp4p(&p, "198.19.200.33", POD4, 32000 + i, 8080, TCP_ACK, 0));
		to_pod(e, tcp4p(&p, "198.19.200.33", POD4, 33000 + i, 8080, TCP_SYN, 0));
	}
	/* The pod's own resets of no flow, on their way out: not here (tc_uplink's). */
	for (int i = 0; i < 10; i++)
		from_pod(e,
			 tcp4p(&p, POD4, "198.19.200.34", 8080, 34000 + i, TCP_RST | TCP_ACK, 0));
	assert_int_equal(e->n_act, 2);
	/* The signal off, then the stage off: nothing counted. */
	cfg.sig_src.resets = 0;
	assert_int_equal(bpf_map_update_elem(fd, &zero, &cfg, 0), 0);
	for (int i = 0; i < 10; i++)
		to_pod(e, tcp4p(&p, "198.19.200.35", POD4, 35000 + i, 8080, TCP_RST, 0));
	cfg.sig_src.resets = 5;
	cfg.flags = 0;
	assert_int_equal(bpf_map_update_elem(fd, &zero, &cfg, 0), 0);
	for (int i = 0; i < 10; i++)
		to_pod(e, tcp4p(&p, "198.19.200.36", POD4, 36000 + i, 8080, TCP_RST, 0));
	assert_int_equal(e->n_act, 2);
	assert_int_equal(e->bad_size, 0);
}

/* A handshake from the peer's port to the pod's dport: the pod's entry key. */
static struct zt_ct_key tcp_open_from(struct env *e, const char *cli, int port, int dport)
{
	struct pg_pkt p;

	to_pod(e, tcp4p(&p, cli, POD4, port, dport, TCP_SYN, 0));
	from_pod(e, tcp4p(&p, POD4, cli, dport, port, TCP_SYN | TCP_ACK, 0));
	to_pod(e, tcp4p(&p, cli, POD4, port, dport, TCP_ACK, 0));
	return ct_key(if_pod, IPPROTO_TCP, cli, POD4, port, dport);
}

static struct zt_ct_key tcp_open(struct env *e, int port, int dport)
{
	return tcp_open_from(e, PEER4, port, dport);
}

/* The sequence number a TCP segment carries. */
static struct pg_pkt *tcp_seqno(struct pg_pkt *p, uint32_t seq)
{
	return tcp_put32(p, 4, seq);
}

/*
 * Whether the server took the opener's first payload in (zt_ct_val.req_ack):
 * its end is kept as it goes; the server's SYN-ACK sent again (its accept
 * queue full: the connection still SYN_RECV on its side) acknowledges
 * none of it, nor a part; an acknowledgment of all of it, even across
 * the sequence space's wrap, does. Later payloads change nothing. A whole
 * HTTP GET or HEAD is marked so (ZT_CT_REQ_WHOLE), a slowloris's headers
 * and a POST's not.
 */
static void test_ct_request_acked(void **state)
{
	struct env *e = *state;
	struct zt_ct_key k;
	struct zt_ct_val v;
	struct pg_pkt p;
	__u32 held;

	std_setup(e);
	k = tcp_open(e, 41100, 8080);
	assert_int_equal(ct_get(e, k, &v), 0);
	assert_int_equal(v.req_ack, 0);
	to_pod(e, tcp_seqno(tcp4p(&p, PEER4, POD4, 41100, 8080, TCP_ACK | TCP_PSH, 84), 5000));
	assert_int_equal(ct_get(e, k, &v), 0);
	assert_int_equal(v.req_ack, ZT_CT_REQ_SENT);
	assert_int_equal(v.req_end, 5084);
	from_pod(e, tcp_ackno(tcp4p(&p, POD4, PEER4, 8080, 41100, TCP_SYN | TCP_ACK, 0), 5000));
	from_pod(e, tcp_ackno(tcp4p(&p, POD4, PEER4, 8080, 41100, TCP_ACK, 0), 5050));
	/* Its retransmission: still the first payload's end. */
	to_pod(e, tcp_seqno(tcp4p(&p, PEER4, POD4, 41100, 8080, TCP_ACK | TCP_PSH, 84), 5000));
	assert_int_equal(ct_get(e, k, &v), 0);
	assert_int_equal(v.req_ack, ZT_CT_REQ_SENT);
	assert_int_equal(v.req_end, 5084);
	held = v.held_ms;
	assert_true(held >= 1);
	sleep_ms(40);
	from_pod(e, tcp_ackno(tcp4p(&p, POD4, PEER4, 8080, 41100, TCP_ACK, 0), 5084));
	assert_int_equal(ct_get(e, k, &v), 0);
	assert_int_equal(v.req_ack, ZT_CT_REQ_ACKED);
	/* Taken in only now: the connection holds the server from here (zt_ct_val.held_ms). */
	assert_in_range(v.held_ms, held + 40, held + 40 + 500);
	held = v.held_ms;
	sleep_ms(20);
	to_pod(e, tcp_seqno(tcp4p(&p, PEER4, POD4, 41100, 8080, TCP_ACK | TCP_PSH, 60), 5084));
	from_pod(e, tcp_ackno(tcp4p(&p, POD4, PEER4, 8080, 41100, TCP_ACK, 0), 5144));
	assert_int_equal(ct_get(e, k, &v), 0);
	assert_int_equal(v.req_ack, ZT_CT_REQ_ACKED);
	assert_int_equal(v.held_ms, held); /* later requests move nothing */

	/* Across the wrap: the request ends past 2^32. */
	k = tcp_open(e, 41101, 8080);
	to_pod(e,
	       tcp_seqno(tcp4p(&p, PEER4, POD4, 41101, 8080, TCP_ACK | TCP_PSH, 84), 0xffffffd0u));
	assert_int_equal(ct_get(e, k, &v), 0);
	assert_int_equal(v.req_end, 0x24);
	from_pod(e, tcp_ackno(tcp4p(&p, POD4, PEER4, 8080, 41101, TCP_ACK, 0), 0xfffffff0u));
	assert_int_equal(ct_get(e, k, &v), 0);
	assert_int_equal(v.req_ack, ZT_CT_REQ_SENT);
	from_pod(e, tcp_ackno(tcp4p(&p, POD4, PEER4, 8080, 41101, TCP_ACK | TCP_PSH, 200), 0x24));
	assert_int_equal(ct_get(e, k, &v), 0);
	assert_int_equal(v.req_ack, ZT_CT_REQ_ACKED);

	/* A whole GET (ab's), a HEAD, and a slowloris's headers that never end. */
	{
		static const struct {
			const char *text;
			int whole;
		} r[] = {
			{ "GET / HTTP/1.0\r\nHost: 198.18.0.10:8080\r\nUser-Agent: "
			  "ApacheBench/2.3\r\nAccept: */*\r\n\r\n",
			  1 },
			{ "HEAD /x HTTP/1.1\r\nHost: a\r\n\r\n", 1 },
			{ "GET /?1234 HTTP/1.1\r\nHost: 198.18.0.10\r\nUser-Agent: Mozilla/4.0\r\n",
			  0 },
			{ "POST /f HTTP/1.1\r\nHost: a\r\nContent-Length: 9\r\n\r\n", 0 },
			{ "GET\r\n\r\n", 0 }, /* shorter than any request line */
		};

		for (int i = 0; i < 5; i++) {
			int port = 41110 + i, n = (int)strlen(r[i].text);

			k = tcp_open(e, port, 8080);
			to_pod(e,
			       with_text(tcp4p(&p, PEER4, POD4, port, 8080, TCP_ACK | TCP_PSH, n),
					 r[i].text));
			assert_int_equal(ct_get(e, k, &v), 0);
			if (v.req_ack != (ZT_CT_REQ_SENT | (r[i].whole ? ZT_CT_REQ_WHOLE : 0)))
				fail_msg("\"%s\": req_ack %#x", r[i].text, v.req_ack);
			from_pod(e, tcp_ackno(tcp4p(&p, POD4, PEER4, 8080, port, TCP_ACK, 0),
					      (uint32_t)n));
			assert_int_equal(ct_get(e, k, &v), 0);
			assert_int_equal(v.req_ack & ZT_CT_REQ_ACKED, ZT_CT_REQ_ACKED);
			assert_int_equal(v.req_ack & ZT_CT_REQ_WHOLE,
					 r[i].whole ? ZT_CT_REQ_WHOLE : 0);
		}
	}
}

/* A request of req bytes, answered with rep bytes that begin with the n bytes of head. */
static void tcp_exchange_from(struct env *e, const char *cli, int port, int dport, int req, int rep,
			      const void *head, size_t n)
{
	struct pg_pkt p;

	to_pod(e, tcp4p(&p, cli, POD4, port, dport, TCP_ACK | TCP_PSH, req));
	tcp4p(&p, POD4, cli, dport, port, TCP_ACK | TCP_PSH, rep);
	assert_true(p.off[PG_PAYLOAD] + n <= p.len);
	memcpy(p.buf + p.off[PG_PAYLOAD], head, n);
	from_pod(e, &p);
}

static void tcp_exchange(struct env *e, int port, int dport, int req, int rep, const void *head,
			 size_t n)
{
	tcp_exchange_from(e, PEER4, port, dport, req, rep, head, n);
}

static __u8 resp_of(struct env *e, struct zt_ct_key k)
{
	struct zt_ct_val v;

	assert_int_equal(ct_get(e, k, &v), 0);
	return v.resp;
}

/* One request on a new connection from port, its response starting with text: the resp bits. */
static __u8 served_after(struct env *e, int port, const char *const *texts, int n)
{
	struct zt_ct_key k = tcp_open(e, port, 8080);

	for (int i = 0; i < n; i++)
		tcp_exchange(e, port, 8080, 80, 60, texts[i], strlen(texts[i]));
	return resp_of(e, k);
}

/*
 * The refusals in the clear of the session from port reported as they
 * came (ZT_EV_REFUSED), from event i on: their records, the counts summed.
 */
static int clear_refused_of(struct env *e, int i, int port, int *records)
{
	int n = 0;

	assert_true(e->n_sshr <= MAX_EVENTS);
	*records = 0;
	for (; i < e->n_sshr; i++) {
		const struct zt_ev_refused *r = &e->sshr[i];

		if (r->sport != port)
			continue;
		assert_int_equal(r->kind, ZT_REFUSED_CLEAR);
		assert_int_equal(r->origin, ZT_REFUSED_FROM_ENDPOINT);
		assert_int_equal(r->family, 4);
		assert_int_equal(r->dport, 8080);
		assert_true(r->count >= 1);
		n += r->count;
		(*records)++;
		/* The run so far: the first record brings ZT_REFUSED_LIVE_FROM at once. */
		assert_true(r->refused >= ZT_REFUSED_LIVE_FROM);
		assert_true(r->first_ns > 0 && r->first_ns <= r->hdr.ts_ns);
	}
	return n;
}

/* The standard setup, cfg in force (probe events), 8080/TCP open to the world and to PEER. */
static void probes_setup(struct env *e, const struct zt_guard_cfg *cfg)
{
	__u32 zero = 0;

	std_setup(e);
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(e->skel->maps.guard_cfg), &zero, cfg, 0),
			 0);
	allow_port(e, 1, ZT_DIR_INGRESS, ZT_ID_WORLD_V4, IPPROTO_TCP, 8080, 12);
	allow_port(e, 2, ZT_DIR_INGRESS, PEER_ID, IPPROTO_TCP, 8080, 12);
}

/*
 * A run of logins refused in the clear in one session is reported as it
 * grows from its ZT_REFUSED_LIVE_FROM-th refusal (ZT_EV_REFUSED, kind
 * CLEAR), the first record with the run's earlier ones, then one by one;
 * zt_ct_val.ssh.clear_live says how many went so, for the session's end
 * to leave out. A response that serves ends the run: a client challenged
 * before each request it then makes (curl --anyauth: 401, 200), or NTLM's
 * two challenges before its 200, never reports; a run after a success
 * counts from its own start. Between two endpoints of the node the
 * server's entry does not report (the client's does); with probe events
 * off nothing is reported.
 */
static void test_ct_refused_live(void **state)
{
	static const char *const no = "HTTP/1.1 401 Unauthorized\r\n";
	static const char *const ok = "HTTP/1.1 200 OK\r\n";
	struct env *e = *state;
	struct zt_guard_cfg cfg = { .flags = ZT_GCF_ACTIVITY | ZT_GCF_PROBES, .probe_rate = 1000 };
	struct zt_ct_key k;
	struct zt_ct_val v;
	struct pg_pkt p;
	__u32 zero = 0;
	int recs, n0;

	probes_setup(e, &cfg);

	/* A guesser on one keep-alive connection (ncrack http): 12 guesses, 12 refusals. */
	n0 = e->n_sshr;
	k = tcp_open_from(e, WORLD4, 46001, 8080);
	for (int i = 0; i < 12; i++) {
		tcp_exchange_from(e, WORLD4, 46001, 8080, 120, 380, no, strlen(no));
		if (i == 1)
			assert_int_equal(clear_refused_of(e, n0, 46001, &recs), 0);
		if (i == 2) {
			assert_int_equal(clear_refused_of(e, n0, 46001, &recs), 3);
			assert_int_equal(recs, 1);
		}
	}
	assert_int_equal(clear_refused_of(e, n0, 46001, &recs), 12);
	assert_int_equal(recs, 10);
	assert_int_equal(ct_get(e, k, &v), 0);
	assert_int_equal(v.refused, 12);
	assert_int_equal(v.ssh.clear_live, 12);
	assert_int_equal(v.resp & ZT_CT_RESP_REFUSED, ZT_CT_RESP_REFUSED);
	/* Its end carries both, for the daemon to add none of them again. */
	to_pod(e, tcp4p(&p, WORLD4, POD4, 46001, 8080, TCP_FIN | TCP_ACK, 0));
	from_pod(e, tcp4p(&p, POD4, WORLD4, 8080, 46001, TCP_FIN | TCP_ACK, 0));
	assert_true(e->n_ses >= 1 && e->n_ses <= MAX_EVENTS);
	assert_int_equal(e->ses[e->n_ses - 1].key.sport, 46001);
	assert_int_equal(e->ses[e->n_ses - 1].val.refused, 12);
	assert_int_equal(e->ses[e->n_ses - 1].val.ssh.clear_live, 12);

	/* Challenged before each of 10 requests, each then served: no run, nothing reported. */
	n0 = e->n_sshr;
	k = tcp_open_from(e, WORLD4, 46002, 8080);
	for (int i = 0; i < 10; i++) {
		tcp_exchange_from(e, WORLD4, 46002, 8080, 120, 380, no, strlen(no));
		tcp_exchange_from(e, WORLD4, 46002, 8080, 160, 900, ok, strlen(ok));
	}
	assert_int_equal(clear_refused_of(e, n0, 46002, &recs), 0);
	assert_int_equal(ct_get(e, k, &v), 0);
	assert_int_equal(v.refused, 0);
	assert_int_equal(v.ssh.clear_live, 0);
	assert_int_equal(v.resp, ZT_CT_RESP_SERVED);

	/* NTLM, three times on one connection: two challenges, then the 200. */
	tcp_open_from(e, WORLD4, 46003, 8080);
	for (int i = 0; i < 3; i++) {
		tcp_exchange_from(e, WORLD4, 46003, 8080, 120, 380, no, strlen(no));
		tcp_exchange_from(e, WORLD4, 46003, 8080, 200, 380, no, strlen(no));
		tcp_exchange_from(e, WORLD4, 46003, 8080, 400, 900, ok, strlen(ok));
	}
	assert_int_equal(clear_refused_of(e, n0, 46003, &recs), 0);

	/* Three refused, one got in, two refused: the second run is not reported ... */
	k = tcp_open_from(e, WORLD4, 46004, 8080);
	for (int i = 0; i < 3; i++)
		tcp_exchange_from(e, WORLD4, 46004, 8080, 120, 380, no, strlen(no));
	assert_int_equal(clear_refused_of(e, n0, 46004, &recs), 3);
	tcp_exchange_from(e, WORLD4, 46004, 8080, 120, 900, ok, strlen(ok));
	for (int i = 0; i < 2; i++)
		tcp_exchange_from(e, WORLD4, 46004, 8080, 120, 380, no, strlen(no));
	assert_int_equal(clear_refused_of(e, n0, 46004, &recs), 3);
	assert_int_equal(ct_get(e, k, &v), 0);
	assert_int_equal(v.refused, 2);
	assert_int_equal(v.ssh.clear_live, 0);
	/* ... until it reaches three of its own. */
	tcp_exchange_from(e, WORLD4, 46004, 8080, 120, 380, no, strlen(no));
	assert_int_equal(clear_refused_of(e, n0, 46004, &recs), 6);
	assert_int_equal(recs, 2);
	assert_int_equal(ct_get(e, k, &v), 0);
	assert_int_equal(v.ssh.clear_live, 3);

	/* From another endpoint of the node: its own entry reports, not the server's. */
	tcp_open(e, 46006, 8080);
	for (int i = 0; i < 5; i++)
		tcp_exchange(e, 46006, 8080, 120, 380, no, strlen(no));
	assert_int_equal(clear_refused_of(e, n0, 46006, &recs), 0);

	/* Probe events off: nothing goes out as it comes, the end counts all. */
	cfg.flags = ZT_GCF_ACTIVITY;
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(e->skel->maps.guard_cfg), &zero, &cfg, 0),
			 0);
	n0 = e->n_sshr;
	k = tcp_open_from(e, WORLD4, 46005, 8080);
	for (int i = 0; i < 5; i++)
		tcp_exchange_from(e, WORLD4, 46005, 8080, 120, 380, no, strlen(no));
	assert_int_equal(e->n_sshr, n0);
	assert_int_equal(ct_get(e, k, &v), 0);
	assert_int_equal(v.refused, 5);
	assert_int_equal(v.ssh.clear_live, 0);
}

/* A request from cli:port to the pod's 8080 whose payload is text (its whole length). */
static void text_to_pod(struct env *e, const char *cli, int port, const char *text)
{
	struct pg_pkt p;

	to_pod(e, with_text(tcp4p(&p, cli, POD4, port, 8080, TCP_ACK | TCP_PSH, (int)strlen(text)),
			    text));
}

/* The pod's answer to cli:port: 600 bytes that begin with text. */
static void text_from_pod(struct env *e, const char *cli, int port, const char *text)
{
	struct pg_pkt p;

	from_pod(e, with_text(tcp4p(&p, POD4, cli, 8080, port, TCP_ACK | TCP_PSH, 600), text));
}

#define FORM_HEAD                                                         \
	"POST /login HTTP/1.1\r\nHost: web\r\nContent-Type: application/" \
	"x-www-form-urlencoded\r\nContent-Length: 32\r\n\r\n"

/*
 * A new connection from cli:port, one request of text answered with
 * answer: the entry's refused and resp (lib/cred.h).
 */
static __u8 cred_once(struct env *e, const char *cli, int port, const char *text,
		      const char *answer, __u8 *resp)
{
	struct zt_ct_key k = tcp_open_from(e, cli, port, 8080);
	struct zt_ct_val v;

	text_to_pod(e, cli, port, text);
	text_from_pod(e, cli, port, answer);
	assert_int_equal(ct_get(e, k, &v), 0);
	*resp = v.resp;
	return v.refused;
}

/*
 * A new connection from WORLD4:port: n segments of the client's, segs[i],
 * each answered by the pod with answers[i] (NULL: none): its entry then.
 */
static struct zt_ct_val cred_session(struct env *e, int port, const char *const *segs,
				     const char *const *answers, int n)
{
	struct zt_ct_key k = tcp_open_from(e, WORLD4, port, 8080);
	struct zt_ct_val v;

	for (int i = 0; i < n; i++) {
		text_to_pod(e, WORLD4, port, segs[i]);
		if (answers[i])
			text_from_pod(e, WORLD4, port, answers[i]);
	}
	assert_int_equal(ct_get(e, k, &v), 0);
	return v;
}

/*
 * Credentials submitted in the clear (lib/cred.h): a POST that names a
 * password field, answered 2xx or 4xx, is a login refused (the form shown
 * again with its error, Rails' 422); a redirect, a 5xx, or the same
 * credentials as the client's last ones to the service (a synthetic login
 * check) are not; whatever the session serves after it ends the run. Form
 * fields, JSON keys, a multipart part's name, a bracketed name, and the
 * body in the request's next segment; not a JSON value "pass", a field
 * whose name only starts so (passenger), a GET or a PUT. A guesser that keeps
 * its connection is reported as it guesses (ZT_EV_REFUSED).
 */
static void test_ct_cred_form(void **state)
{
	static const char *const ok = "HTTP/1.1 200 OK\r\n";
	static const char *const moved = "HTTP/1.1 302 Found\r\n";
	static const struct {
		const char *text, *answer;
		int refused;
	} c[] = {
		{ FORM_HEAD "username=admin&password=guess01", "HTTP/1.1 200 OK\r\n", 1 },
		{ FORM_HEAD "username=admin&password=guess02", "HTTP/1.0 200 OK\r\n", 1 },
		{ FORM_HEAD "username=admin&password=guess03", "HTTP/1.1 422 Unprocessable\r\n",
		  1 },
		{ FORM_HEAD "username=admin&password=guess04", "HTTP/1.1 403 Forbidden\r\n", 1 },
		{ FORM_HEAD "username=admin&password=guess05", "HTTP/1.1 401 Unauthorized\r\n", 1 },
		{ FORM_HEAD "username=admin&password=guess06", "HTTP/1.1 302 Found\r\n", 0 },
		{ FORM_HEAD "username=admin&password=guess07", "HTTP/1.1 303 See Other\r\n", 0 },
		{ FORM_HEAD "username=admin&password=guess08", "HTTP/1.1 500 Oops\r\n", 0 },
		{ "POST /wp-login.php HTTP/1.1\r\n\r\nlog=admin&pwd=guess09&wp-submit=1", ok, 1 },
		{ "POST /j_security_check HTTP/1.1\r\n\r\nj_username=a&j_password=guess10", ok, 1 },
		{ "POST /users/sign_in HTTP/1.1\r\n\r\nuser%5Bemail%5D=a&user%5Bpassword%5D=g11",
		  ok, 1 },
		{ "POST /login HTTP/1.1\r\n\r\nuser[login]=a&user[Passwd]=guess12", ok, 1 },
		{ "POST /api/login HTTP/1.1\r\nContent-Type: application/json\r\n\r\n"
		  "{\"username\": \"admin\", \"Password\": \"guess13\"}",
		  ok, 1 },
		{ "POST /api/login HTTP/1.1\r\n\r\n{\"user\":\"a\",\"passphrase\" : \"g14\"}", ok,
		  1 },
		{ "POST /login HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=b\r\n\r\n"
		  "--b\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\nguess15\r\n",
		  ok, 1 },
		{ "POST /api/results HTTP/1.1\r\n\r\n{\"test\":\"login\",\"status\":\"pass\"}", ok,
		  0 },
		{ "POST /book HTTP/1.1\r\n\r\nfrom=ARN&to=CDG&passengers=2&class=y", ok, 0 },
		{ "GET /login?username=admin&password=guess18 HTTP/1.1\r\n\r\n", ok, 0 },
		{ "PUT /login HTTP/1.1\r\n\r\nusername=admin&password=guess19", ok, 0 },
		{ FORM_HEAD "username=admin&password=guess20", "HTTP/1.1 404 Not Found\r\n", 1 },
	};
	struct env *e = *state;
	struct zt_guard_cfg cfg = { .flags = ZT_GCF_ACTIVITY | ZT_GCF_PROBES, .probe_rate = 1000 };
	struct zt_ct_key k;
	struct zt_ct_val v;
	struct pg_pkt p;
	const char *last;
	__u8 resp;
	int recs, n0;

	probes_setup(e, &cfg);

	for (size_t i = 0; i < (sizeof(c) / sizeof(c[0])); i++) {
		int n = cred_once(e, WORLD4, 47000 + (int)i, c[i].text, c[i].answer, &resp);

		if (n != c[i].refused)
			fail_msg("case %zu (%.40s...): refused %d, want %d", i, c[i].text, n,
				 c[i].refused);
		assert_int_equal(!!(resp & ZT_CT_RESP_REFUSED), c[i].refused);
		assert_int_equal(resp & (ZT_CT_RESP_CRED | ZT_CT_RESP_POST | ZT_CT_RESP_DUE), 0);
	}
	/* The same credentials as the client's last ones to the service: served. */
	last = c[sizeof(c) / sizeof(c[0]) - 1].text;
	assert_int_equal(cred_once(e, WORLD4, 47100, last, ok, &resp), 0);
	assert_int_equal(resp, ZT_CT_RESP_SERVED);
	assert_int_equal(cred_once(e, WORLD4, 47101, last, ok, &resp), 0);
	/* Another client's are its own ... */
	assert_int_equal(cred_once(e, "198.19.200.2", 47102, last, ok, &resp), 1);
	/* ... but between two endpoints of the node the server's entry reads none. */
	assert_int_equal(cred_once(e, PEER4, 47103, last, ok, &resp), 0);
	/*
	 * ZT_CRED_SEEN checks from one address taking turns (an error path's, a
	 * sign-in's): each is among the client's last ones after the first
	 * round. One more taking turns pushes each out before it comes again.
	 */
	for (int n = ZT_CRED_SEEN; n <= ZT_CRED_SEEN + 1; n++) {
		int port = 47110 + n * 20, counted = 0;

		for (int round = 0; round < 3; round++) {
			for (int j = 0; j < n; j++) {
				char body[160];

				snprintf(body, sizeof(body),
					 FORM_HEAD "username=check%d&password=set%d", n, j);
				counted += cred_once(e, "198.19.200.3", port++, body, ok, &resp);
			}
		}
		assert_int_equal(counted, n == ZT_CRED_SEEN ? n : 3 * n);
	}

	/* The body in the request's next segment: its headers first, then the fields. */
	k = tcp_open_from(e, WORLD4, 47200, 8080);
	text_to_pod(e, WORLD4, 47200, FORM_HEAD);
	assert_int_equal(ct_get(e, k, &v), 0);
	assert_int_equal(v.resp & ZT_CT_RESP_POST, ZT_CT_RESP_POST);
	text_to_pod(e, WORLD4, 47200, "username=admin&password=guess21");
	assert_int_equal(ct_get(e, k, &v), 0);
	assert_int_equal(v.resp & (ZT_CT_RESP_POST | ZT_CT_RESP_CRED), ZT_CT_RESP_CRED);
	text_from_pod(e, WORLD4, 47200, ok);
	assert_int_equal(ct_get(e, k, &v), 0);
	assert_int_equal(v.refused, 1);
	/* ... and only that one: a third segment of the body is not read. */
	{
		const char *segs[] = { FORM_HEAD, "comment=a-long-one",
				       "username=admin&password=guess22" };
		const char *answers[] = { NULL, NULL, ok };

		v = cred_session(e, 47201, segs, answers, 3);
		assert_int_equal(v.refused, 0);
		assert_int_equal(v.resp, ZT_CT_RESP_SERVED);
	}
	/* A user who got in: the page after the login serves, and the run ends. */
	{
		const char *segs[] = { FORM_HEAD "username=alice&password=guess23",
				       "GET /home HTTP/1.1\r\n\r\n" };
		const char *answers[] = { ok, ok };

		v = cred_session(e, 47300, segs, answers, 2);
		assert_int_equal(v.refused, 0);
		assert_int_equal(v.resp, ZT_CT_RESP_SERVED);
	}
	/* One redirected: neither. */
	{
		const char *segs[] = { FORM_HEAD "username=alice&password=guess24" };
		const char *answers[] = { moved };

		v = cred_session(e, 47301, segs, answers, 1);
		assert_int_equal(v.refused, 0);
		assert_int_equal(v.resp, 0);
	}

	/* A guesser on one keep-alive connection: reported as it guesses. */
	n0 = e->n_sshr;
	k = tcp_open_from(e, WORLD4, 47400, 8080);
	for (int i = 0; i < 6; i++) {
		char body[160];

		snprintf(body, sizeof(body), FORM_HEAD "username=admin&password=ka%06d", i);
		text_to_pod(e, WORLD4, 47400, body);
		text_from_pod(e, WORLD4, 47400, ok);
	}
	assert_int_equal(clear_refused_of(e, n0, 47400, &recs), 6);
	assert_int_equal(recs, 4);
	assert_int_equal(ct_get(e, k, &v), 0);
	assert_int_equal(v.refused, 6);
	to_pod(e, tcp4p(&p, WORLD4, POD4, 47400, 8080, TCP_FIN | TCP_ACK, 0));
	from_pod(e, tcp4p(&p, POD4, WORLD4, 8080, 47400, TCP_FIN | TCP_ACK, 0));
	assert_true(e->n_ses >= 1 && e->n_ses <= MAX_EVENTS);
	assert_int_equal(e->ses[e->n_ses - 1].key.sport, 47400);
	assert_int_equal(e->ses[e->n_ses - 1].val.refused, 6);
}

/* One query on a new connection to port 53, answered with 60 bytes that begin with head: resp. */
static __u8 dns_served(struct env *e, int port, const __u8 head[8])
{
	struct zt_ct_key k = tcp_open(e, port, 53);

	tcp_exchange(e, port, 53, 52, 60, head, 8);
	return resp_of(e, k);
}

/*
 * One startup packet on a new connection to port 5432, answered with the
 * 24-byte responses whose first 9 bytes are heads[i] (the client sending
 * 40 bytes between them): resp.
 */
static __u8 pg_after(struct env *e, int port, const __u8 (*heads)[9], int n)
{
	struct zt_ct_key k = tcp_open(e, port, 5432);

	for (int i = 0; i < n; i++)
		tcp_exchange(e, port, 5432, i ? 40 : 52, 24, heads[i], 9);
	return resp_of(e, k);
}

/*
 * CHALLENGED: PostgreSQL asking for a password (AuthenticationRequest:
 * 'R', a length of 8 or more, SASL, MD5 or cleartext) while it is the last
 * response; what the server answers next ends it (SASL continued, an
 * ErrorResponse). Not AuthenticationOk (0), a short length, another code.
 */
static void test_ct_challenged(void **state)
{
	static const __u8 sasl[][9] = { { 'R', 0, 0, 0, 23, 0, 0, 0, 10 } };
	static const __u8 md5[][9] = { { 'R', 0, 0, 0, 12, 0, 0, 0, 5 } };
	static const __u8 clear[][9] = { { 'R', 0, 0, 0, 8, 0, 0, 0, 3 } };
	static const __u8 then_err[][9] = { { 'R', 0, 0, 0, 23, 0, 0, 0, 10 },
					    { 'R', 0, 0, 0, 92, 0, 0, 0, 11 },
					    { 'E', 0, 0, 0, 100, 'S', 'F', 'A', 'T' } };
	static const __u8 ok[][9] = { { 'R', 0, 0, 0, 8, 0, 0, 0, 0 } };
	static const __u8 shortlen[][9] = { { 'R', 0, 0, 0, 4, 0, 0, 0, 10 } };
	static const __u8 other[][9] = { { 'R', 0, 0, 0, 8, 0, 0, 0, 12 } };
	struct env *e = *state;

	std_setup(e);
	allow_port(e, 1, ZT_DIR_INGRESS, PEER_ID, IPPROTO_TCP, 5432, 12);
	assert_int_equal(pg_after(e, 44001, sasl, 1), ZT_CT_RESP_CHALLENGED);
	assert_int_equal(pg_after(e, 44002, md5, 1), ZT_CT_RESP_CHALLENGED);
	assert_int_equal(pg_after(e, 44003, clear, 1), ZT_CT_RESP_CHALLENGED);
	assert_int_equal(pg_after(e, 44004, then_err, 3), 0);
	assert_int_equal(pg_after(e, 44005, ok, 1), 0);
	assert_int_equal(pg_after(e, 44006, shortlen, 1), 0);
	assert_int_equal(pg_after(e, 44007, other, 1), 0);
}

/*
 * SERVED by DNS over TCP: a segment that is one whole answer (its two-byte
 * length the payload's less two, QR set, opcode QUERY, Z clear, one
 * question), NOERROR or NXDOMAIN alike; not a length that disagrees, a
 * query, another opcode, Z set, two questions.
 */
static void test_ct_served_dns(void **state)
{
	static const __u8 answer[8] = { 0, 58, 0x12, 0x34, 0x81, 0x80, 0, 1 };
	static const __u8 nxdomain[8] = { 0, 58, 0x12, 0x35, 0x81, 0x83, 0, 1 };
	static const __u8 longer[8] = { 0, 59, 0x12, 0x36, 0x81, 0x80, 0, 1 };
	static const __u8 query[8] = { 0, 58, 0x12, 0x37, 0x01, 0x00, 0, 1 };
	static const __u8 notify[8] = { 0, 58, 0x12, 0x38, 0xa1, 0x80, 0, 1 };
	static const __u8 zbit[8] = { 0, 58, 0x12, 0x39, 0x81, 0xc0, 0, 1 };
	static const __u8 two[8] = { 0, 58, 0x12, 0x3a, 0x81, 0x80, 0, 2 };
	struct env *e = *state;

	std_setup(e);
	allow_port(e, 1, ZT_DIR_INGRESS, PEER_ID, IPPROTO_TCP, 53, 12);
	assert_int_equal(dns_served(e, 43001, answer), ZT_CT_RESP_SERVED);
	assert_int_equal(dns_served(e, 43002, nxdomain), ZT_CT_RESP_SERVED);
	assert_int_equal(dns_served(e, 43003, longer), 0);
	assert_int_equal(dns_served(e, 43004, query), 0);
	assert_int_equal(dns_served(e, 43005, notify), 0);
	assert_int_equal(dns_served(e, 43006, zbit), 0);
	assert_int_equal(dns_served(e, 43007, two), 0);
}

/*
 * SERVED: a response that is an HTTP/1.x success (2xx), a 304 Not
 * Modified or a login accepted (FTP 230, SMTP 235) marks the session for good (a health check
 * of a tiny page is an exchange); a redirect, an error, a status cut short
 * or not a digit, a refusal do not, a refusal after a success still
 * reads as refused, and so does a refusal followed by a response that
 * serves nothing (another request's 404, a QUIT's 221).
 */
static void test_ct_served(void **state)
{
	static const char *const ok[] = { "HTTP/1.1 200 OK\r\n" };
	static const char *const nc[] = { "HTTP/1.0 204 No Content\r\n" };
	static const char *const moved[] = { "HTTP/1.1 302 Found\r\n" };
	static const char *const same[] = { "HTTP/1.1 304 Not Modified\r\n" };
	static const char *const other3[] = { "HTTP/1.1 305 Use Proxy\r\n" };
	static const char *const err[] = { "HTTP/1.1 500 Internal Server Error\r\n" };
	static const char *const bad[] = { "HTTP/1.1 2x0 OK\r\n" };
	static const char *const h2[] = { "HTTP/2 200 OK\r\n\r\n" };
	static const char *const digest[] = { "HTTP/1.1 401 Unauthorized\r\n",
					      "HTTP/1.1 200 OK\r\n" };
	static const char *const then401[] = { "HTTP/1.1 200 OK\r\n",
					       "HTTP/1.1 401 Unauthorized\r\n" };
	static const char *const then404[] = { "HTTP/1.1 401 Unauthorized\r\n",
					       "HTTP/1.1 404 Not Found\r\n" };
	static const char *const ftp_in[] = { "530 Login incorrect.\r\n",
					      "230 Login successful.\r\n" };
	static const char *const ftp_quit[] = { "530 Login incorrect.\r\n", "221 Goodbye.\r\n" };
	static const char *const smtp_in[] = { "535 5.7.8 Authentication credentials invalid\r\n",
					       "235 2.7.0 Authentication successful\r\n" };
	struct env *e = *state;

	std_setup(e);
	allow_port(e, 1, ZT_DIR_INGRESS, PEER_ID, IPPROTO_TCP, 8080, 12);
	assert_int_equal(served_after(e, 42001, ok, 1), ZT_CT_RESP_SERVED);
	assert_int_equal(served_after(e, 42002, nc, 1), ZT_CT_RESP_SERVED);
	assert_int_equal(served_after(e, 42003, moved, 1), 0);
	assert_int_equal(served_after(e, 42004, err, 1), 0);
	assert_int_equal(served_after(e, 42005, bad, 1), 0);
	assert_int_equal(served_after(e, 42006, h2, 1), 0);
	assert_int_equal(served_after(e, 42007, digest, 2), ZT_CT_RESP_SERVED);
	assert_int_equal(served_after(e, 42008, then401, 2),
			 ZT_CT_RESP_REFUSED | ZT_CT_RESP_SERVED);
	/* A refusal stays until a response serves: another request, a QUIT leave it. */
	assert_int_equal(served_after(e, 42009, then404, 2), ZT_CT_RESP_REFUSED);
	assert_int_equal(served_after(e, 42010, ftp_quit, 2), ZT_CT_RESP_REFUSED);
	assert_int_equal(served_after(e, 42011, ftp_in, 2), ZT_CT_RESP_SERVED);
	assert_int_equal(served_after(e, 42012, smtp_in, 2), ZT_CT_RESP_SERVED);
	assert_int_equal(served_after(e, 42013, same, 1), ZT_CT_RESP_SERVED);
	assert_int_equal(served_after(e, 42014, other3, 1), 0);
}

/*
 * SERVED by Redis's answer to a PING ("+PONG\r\n": a redis-check, a
 * sentinel's probe); not by another simple string (POP3's +OK reads the
 * same), not by -NOAUTH, and not after a refused AUTH on the connection:
 * a guesser that adds a PING to each guess stays a refused login. A
 * refusal after a PONG reads as HTTP's 200-then-401 does.
 */
static void test_ct_served_pong(void **state)
{
	static const char *const pong[] = { "+PONG\r\n" };
	static const char *const longer[] = { "+PONGS\r\n" };
	static const char *const ok[] = { "+OK\r\n" };
	static const char *const noauth[] = { "-NOAUTH Authentication required.\r\n" };
	static const char *const guess[] = { "-WRONGPASS invalid username-password pair\r\n",
					     "+PONG\r\n" };
	static const char *const guess_old[] = { "-ERR invalid password\r\n", "+PONG\r\n" };
	static const char *const then_refused[] = {
		"+PONG\r\n", "-WRONGPASS invalid username-password pair\r\n"
	};
	struct env *e = *state;
	struct zt_ct_val v;

	std_setup(e);
	allow_port(e, 1, ZT_DIR_INGRESS, PEER_ID, IPPROTO_TCP, 8080, 12);
	assert_int_equal(served_after(e, 45001, pong, 1), ZT_CT_RESP_SERVED);
	assert_int_equal(served_after(e, 45002, longer, 1), 0);
	assert_int_equal(served_after(e, 45003, ok, 1), 0);
	assert_int_equal(served_after(e, 45004, noauth, 1), 0);
	assert_int_equal(served_after(e, 45005, guess, 2), ZT_CT_RESP_REFUSED);
	assert_int_equal(ct_get(e, ct_key(if_pod, IPPROTO_TCP, PEER4, POD4, 45005, 8080), &v), 0);
	assert_int_equal(v.refused, 1);
	assert_int_equal(served_after(e, 45006, guess_old, 2), ZT_CT_RESP_REFUSED);
	assert_int_equal(served_after(e, 45007, then_refused, 2),
			 ZT_CT_RESP_REFUSED | ZT_CT_RESP_SERVED);
}

/* A request of 80 bytes on a new connection to dport, answered by the rep bytes of head: resp. */
static __u8 resp_after(struct env *e, int port, int dport, const void *head, size_t n, int rep)
{
	struct zt_ct_key k = tcp_open(e, port, dport);

	tcp_exchange(e, port, dport, 80, rep, head, n);
	return resp_of(e, k);
}

/*
 * REFUSED by a database's own words: PostgreSQL's ErrorResponse, FATAL,
 * SQLSTATE class 28 (28P01 a wrong password, 28000 a role or host refused),
 * in the layout of 9.6 and later (S, V, C) and before (S, C); MySQL's and
 * MariaDB's ERR packet 1045 or 1698. Not another FATAL (3D000: no such
 * database), an ERROR, a severity in another language, an ErrorResponse cut
 * short; not another ERR code, an ERR packet longer than the segment, an OK.
 */
static void test_ct_refused_db(void **state)
{
#define PGE(sev, rest) "E\0\0\0\x64S" sev "\0" rest
	static const char pg_pw[] = PGE("FATAL", "VFATAL\0C28P01\0Mpassword authentication failed");
	static const char pg_role[] = PGE("FATAL", "VFATAL\0C28000\0Mno pg_hba.conf entry");
	static const char pg_old[] = PGE("FATAL", "C28P01\0Mpassword authentication failed");
	static const char pg_db[] = PGE("FATAL", "VFATAL\0C3D000\0Mdatabase does not exist");
	static const char pg_error[] = PGE("ERROR", "VERROR\0C28P01\0M...");
	static const char pg_local[] = PGE("FATAL!", "VFATAL\0C28P01\0M...");
	static const char pg_cut[] = "E\0\0\0\x64SFATAL\0VFATAL\0C2";
	static const __u8 my_1045[] = { 0x48, 0, 0, 2, 0xff, 0x15, 0x04, '#', '2', '8' };
	static const __u8 my_1698[] = { 0x30, 0, 0, 2, 0xff, 0xa2, 0x06, '#', '2', '8' };
	static const __u8 my_1049[] = { 0x30, 0, 0, 1, 0xff, 0x19, 0x04, '#', '4', '2' };
	static const __u8 my_long[] = { 0x60, 0, 0, 2, 0xff, 0x15, 0x04, '#', '2', '8' };
	static const __u8 my_ok[] = { 0x07, 0, 0, 2, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00 };
	struct env *e = *state;
	struct zt_ct_val v;

	std_setup(e);
	allow_port(e, 1, ZT_DIR_INGRESS, PEER_ID, IPPROTO_TCP, 5432, 12);
	allow_port(e, 1, ZT_DIR_INGRESS, PEER_ID, IPPROTO_TCP, 3306, 12);
	assert_int_equal(resp_after(e, 46001, 5432, pg_pw, sizeof(pg_pw) - 1, 101),
			 ZT_CT_RESP_REFUSED);
	assert_int_equal(ct_get(e, ct_key(if_pod, IPPROTO_TCP, PEER4, POD4, 46001, 5432), &v), 0);
	assert_int_equal(v.refused, 1);
	assert_int_equal(resp_after(e, 46002, 5432, pg_role, sizeof(pg_role) - 1, 101),
			 ZT_CT_RESP_REFUSED);
	assert_int_equal(resp_after(e, 46003, 5432, pg_old, sizeof(pg_old) - 1, 101),
			 ZT_CT_RESP_REFUSED);
	assert_int_equal(resp_after(e, 46004, 5432, pg_db, sizeof(pg_db) - 1, 101), 0);
	assert_int_equal(resp_after(e, 46005, 5432, pg_error, sizeof(pg_error) - 1, 101), 0);
	assert_int_equal(resp_after(e, 46006, 5432, pg_local, sizeof(pg_local) - 1, 101), 0);
	assert_int_equal(resp_after(e, 46007, 5432, pg_cut, sizeof(pg_cut) - 1, 21), 0);
	assert_int_equal(resp_after(e, 46011, 3306, my_1045, sizeof(my_1045), 76),
			 ZT_CT_RESP_REFUSED);
	assert_int_equal(resp_after(e, 46012, 3306, my_1698, sizeof(my_1698), 52),
			 ZT_CT_RESP_REFUSED);
	assert_int_equal(resp_after(e, 46013, 3306, my_1049, sizeof(my_1049), 52), 0);
	assert_int_equal(resp_after(e, 46014, 3306, my_long, sizeof(my_long), 52), 0);
	assert_int_equal(resp_after(e, 46015, 3306, my_ok, sizeof(my_ok), 11), 0);
#undef PGE
}

/* Per-direction sizes, gaps and flag counts, and the handshake, as a flow goes. */
static void test_ct_features(void **state)
{
	struct env *e = *state;
	struct zt_ct_key k = ct_key(if_pod, IPPROTO_TCP, POD4, PEER4, 42000, 443);
	struct zt_ct_val v;
	struct pg_pkt p;
	__u32 s0[4], s1[2];
	__u64 sq0 = 0, sq1 = 0, span;
	int i;

	std_setup(e);
	allow_port(e, 1, ZT_DIR_EGRESS, PEER_ID, IPPROTO_TCP, 443, 11);
	from_pod(e, tcp4p(&p, POD4, PEER4, 42000, 443, TCP_SYN, 0));
	s0[0] = (__u32)ip_len(p);
	assert_int_equal(ct_get(e, k, &v), 0);
	assert_int_equal(v.d[0].size_min, s0[0]);
	assert_int_equal(v.d[0].size_max, s0[0]);
	assert_int_equal(v.d[1].size_min, ZT_CT_SIZE_UNSET);
	assert_int_equal(v.d[0].iat_min, ZT_CT_IAT_UNSET);
	assert_int_equal(v.syn[0], 1);
	assert_int_equal(v.hs_done, 0);
	assert_int_equal(v.held_ms, 0);
	to_pod(e, tcp4p(&p, PEER4, POD4, 443, 42000, TCP_SYN | TCP_ACK, 0));
	s1[0] = (__u32)ip_len(p);
	sleep_ms(10);
	assert_int_equal(ct_get(e, k, &v), 0);
	assert_int_equal(v.held_ms, 0); /* answered, not completed */
	from_pod(e, tcp4p(&p, POD4, PEER4, 42000, 443, TCP_ACK, 0)); /* completes the handshake */
	s0[1] = (__u32)ip_len(p);
	assert_int_equal(ct_get(e, k, &v), 0);
	assert_int_equal(v.hs_done, 1);
	/* When, from the first SYN, plus 1: 10 ms and what the runs took. */
	assert_in_range(v.held_ms, 11, 11 + 500);
	assert_int_equal(v.ack_only[0], 1);
	sleep_ms(30);
	from_pod(e, tcp4p(&p, POD4, PEER4, 42000, 443, TCP_ACK | TCP_PSH, 300));
	s0[2] = (__u32)ip_len(p);
	sleep_ms(20);
	to_pod(e, tcp4p(&p, PEER4, POD4, 443, 42000, TCP_ACK | TCP_PSH, 900));
	s1[1] = (__u32)ip_len(p);
	from_pod(e, tcp4p(&p, POD4, PEER4, 42000, 443, TCP_FIN | TCP_ACK, 0));
	s0[3] = (__u32)ip_len(p);
	for (i = 0; i < 4; i++)
		sq0 += (__u64)s0[i] * s0[i];
	for (i = 0; i < 2; i++)
		sq1 += (__u64)s1[i] * s1[i];
	assert_int_equal(ct_get(e, k, &v), 0);
	assert_int_equal(v.d[0].packets, 4);
	assert_int_equal(v.d[1].packets, 2);
	assert_int_equal(v.d[0].size_min, s0[0] < s0[1] ? s0[0] : s0[1]);
	assert_int_equal(v.d[0].size_max, s0[2]);
	assert_int_equal(v.d[1].size_min, s1[0]);
	assert_int_equal(v.d[1].size_max, s1[1]);
	assert_int_equal(v.d[0].size_sq, sq0);
	assert_int_equal(v.d[1].size_sq, sq1);
	/* Gaps of the original direction: ~10 ms, ~30 ms, ~20 ms; ns >> 10. */
	print_message("    gaps (1.024 us units): min %u max %u sum %llu\n", v.d[0].iat_min,
		      v.d[0].iat_max, (unsigned long long)v.d[0].iat_sum);
	assert_true(v.d[0].iat_min >= (10000000 >> ZT_CT_IAT_SHIFT) - 100);
	assert_true(v.d[0].iat_max >= (30000000 >> ZT_CT_IAT_SHIFT) - 100);
	assert_true(v.d[0].iat_max < (1000000000 >> ZT_CT_IAT_SHIFT));
	/* Each of the 3 gaps is truncated to units on its own: the sum lags by < 3 units. */
	span = (v.d[0].last_ns - v.first_ns) >> ZT_CT_IAT_SHIFT;
	assert_true(v.d[0].iat_sum <= span && v.d[0].iat_sum + 3 > span);
	assert_true(v.d[0].iat_sq >= (__u64)v.d[0].iat_max * v.d[0].iat_max);
	/* The reply direction has had one gap. */
	assert_int_equal(v.d[1].iat_min, v.d[1].iat_max);
	assert_int_equal(v.d[1].iat_sum, v.d[1].iat_min);
	assert_int_equal(v.syn[0], 1);
	assert_int_equal(v.syn[1], 1);
	assert_int_equal(v.d[0].psh, 1);
	assert_int_equal(v.d[1].psh, 1);
	assert_int_equal(v.fin[0], 1);
	assert_int_equal(v.fin[1], 0);
	assert_int_equal(v.rst[0] + v.rst[1], 0);
	assert_int_equal(v.ack_only[0], 1); /* the FIN is no ACK alone, nor the PSH */
	assert_int_equal(v.ack_only[1], 0);
	assert_int_equal(v.hs_done, 1); /* and it stays after the close begins */

	/* What the flow model gets from this entry. */
	struct zt_feat_flowstats fs;
	double mean0 = (s0[0] + s0[1] + s0[2] + s0[3]) / 4.0;

	zt_ct_flowstats(&v, &fs);
	assert_true(fs.handshake);
	assert_float_equal(fs.size_min[0], v.d[0].size_min, 0);
	assert_float_equal(fs.size_max[1], s1[1], 0);
	assert_float_equal(fs.size_mean[0], mean0, 1e-3);
	assert_float_equal(fs.size_std[0], sqrt(sq0 / 4.0 - mean0 * mean0), 1e-2);
	assert_float_equal(fs.size_std[1], (s1[1] - s1[0]) / 2.0, 1e-2);
	/* Gaps of ~10, ~30 and ~20 ms: in microseconds now. */
	assert_true(fs.iat_min_us[0] >= 9900 && fs.iat_min_us[0] < fs.iat_mean_us[0]);
	assert_true(fs.iat_max_us[0] >= 29900 && fs.iat_max_us[0] < 1e6);
	assert_float_equal(fs.iat_mean_us[0], v.d[0].iat_sum * 1.024 / 3, 1);
	assert_true(fs.iat_std_us[0] > 0);
	assert_float_equal(fs.iat_std_us[1], 0, 0); /* one gap */
	assert_int_equal(fs.psh[1], 1);
	assert_int_equal(fs.fin[0], 1);
	assert_int_equal(fs.syn[1], 1);
}

/*
 * A client that completes a handshake with an endpoint becomes verified for
 * the XDP guard's SYN protection; the server of the endpoint's own
 * connection does not, nor a client whose handshake never completes.
 */
static void test_handshake_verifies_client(void **state)
{
	struct env *e = *state;
	struct zt_addr_key peer = { .family = 4 }, other = { .family = 4 };
	struct zt_verified_val v;
	struct pg_pkt p;
	int fd = bpf_map__fd(e->skel->maps.syn_verified);

	inet_pton(AF_INET, PEER4, peer.addr);
	inet_pton(AF_INET, "198.18.1.21", other.addr);
	std_setup(e);
	allow_port(e, 1, ZT_DIR_INGRESS, PEER_ID, IPPROTO_TCP, 80, 12);
	allow_port(e, 1, ZT_DIR_EGRESS, PEER_ID, IPPROTO_TCP, 443, 11);
	ipc_add(e, 1, "198.18.1.21/32", PEER_ID, 0);
	/* The endpoint connects out: its server is not a client of ours. */
	from_pod(e, tcp4p(&p, POD4, PEER4, 43000, 443, TCP_SYN, 0));
	to_pod(e, tcp4p(&p, PEER4, POD4, 443, 43000, TCP_SYN | TCP_ACK, 0));
	from_pod(e, tcp4p(&p, POD4, PEER4, 43000, 443, TCP_ACK, 0));
	assert_int_not_equal(bpf_map_lookup_elem(fd, &peer, &v), 0);
	/* A client whose handshake stops at the SYN-ACK. */
	to_pod(e, tcp4p(&p, "198.18.1.21", POD4, 43001, 80, TCP_SYN, 0));
	from_pod(e, tcp4p(&p, POD4, "198.18.1.21", 80, 43001, TCP_SYN | TCP_ACK, 0));
	assert_int_not_equal(bpf_map_lookup_elem(fd, &other, &v), 0);
	/* A client that completes it. */
	to_pod(e, tcp4p(&p, PEER4, POD4, 43002, 80, TCP_SYN, 0));
	from_pod(e, tcp4p(&p, POD4, PEER4, 80, 43002, TCP_SYN | TCP_ACK, 0));
	to_pod(e, tcp4p(&p, PEER4, POD4, 43002, 80, TCP_ACK, 0));
	assert_int_equal(bpf_map_lookup_elem(fd, &peer, &v), 0);
	assert_int_equal(v.how, ZT_VER_HANDSHAKE);
	assert_true(v.since_ns > 0);
}

/* The tail of a flow whose entry is gone: its verdict, no new flow, no event. */
static void test_closing_tail_is_no_flow(void **state)
{
	struct env *e = *state;
	struct zt_ct_val v;
	struct pg_pkt p;
	__u64 est = stat_of(e, ZT_TCS_ALLOW_EST).packets;

	std_setup(e);
	allow_port(e, 1, ZT_DIR_EGRESS, PEER_ID, IPPROTO_TCP, 443, 11);
	assert_int_equal(from_pod(e, tcp4p(&p, POD4, PEER4, 44000, 443, TCP_FIN | TCP_ACK, 0)),
			 TC_ACT_OK);
	assert_int_equal(to_pod(e, tcp4p(&p, PEER4, POD4, 443, 44000, TCP_RST | TCP_ACK, 0)),
			 TC_ACT_SHOT);
	assert_int_not_equal(ct_get(e, ct_key(if_pod, IPPROTO_TCP, POD4, PEER4, 44000, 443), &v),
			     0);
	assert_int_not_equal(ct_get(e, ct_key(if_pod, IPPROTO_TCP, PEER4, POD4, 443, 44000), &v),
			     0);
	assert_int_equal(e->n_ev, 0);
	assert_int_equal(stat_of(e, ZT_TCS_ALLOW_EST).packets, est + 1);
	/* The RST came in (ingress is isolated, no rule): denied, still no flow. */
	assert_int_equal(stat_of(e, ZT_TCS_DENY_EST).packets, 1);
	/* The policy still decides: a FIN out to a port no rule allows drops. */
	assert_int_equal(from_pod(e, tcp4p(&p, POD4, PEER4, 44001, 444, TCP_FIN | TCP_ACK, 0)),
			 TC_ACT_SHOT);
	assert_int_equal(e->n_ev, 0);
	/* A plain ACK without an entry is still a mid-stream pickup: a new flow. */
	assert_int_equal(from_pod(e, tcp4p(&p, POD4, PEER4, 44002, 443, TCP_ACK, 0)), TC_ACT_OK);
	assert_int_equal(e->n_ev, 1);
}

/*
 * A segment with FIN (no SYN, no RST) that no connection owned and that
 * policy denied on its way into the endpoint: a FIN, Xmas or Maimon scan's
 * probe, reported for the scan detector (ZT_PROBE_STRAY_DENIED) while
 * probes are on. Not a reset, not one policy let in, not one on its way
 * out; still no flow.
 */
static void test_denied_fin_is_probe(void **state)
{
	struct env *e = *state;
	struct zt_guard_cfg cfg = { .flags = ZT_GCF_ACTIVITY, .probe_rate = 1000 };
	struct pg_pkt p;
	__u8 prober[16] = {}, target[16] = {};
	__u32 zero = 0;

	std_setup(e);
	allow_port(e, 1, ZT_DIR_INGRESS, PEER_ID, IPPROTO_TCP, 8080, 12);
	/* Probes off: nothing. */
	assert_int_equal(to_pod(e, tcp4p(&p, PEER4, POD4, 41000, 22, TCP_FIN | TCP_ACK, 0)),
			 TC_ACT_SHOT);
	assert_int_equal(e->n_res, 0);
	cfg.flags |= ZT_GCF_PROBES;
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(e->skel->maps.guard_cfg), &zero, &cfg, 0),
			 0);
	/* Maimon (FIN+ACK), FIN alone, Xmas (FIN+PSH+URG) to ports no rule opens. */
	assert_int_equal(to_pod(e, tcp4p(&p, PEER4, POD4, 41000, 22, TCP_FIN | TCP_ACK, 0)),
			 TC_ACT_SHOT);
	assert_int_equal(to_pod(e, tcp4p(&p, PEER4, POD4, 41000, 23, TCP_FIN, 0)), TC_ACT_SHOT);
	assert_int_equal(to_pod(e, tcp4p(&p, PEER4, POD4, 41000, 25, TCP_FIN | TCP_PSH | 0x20, 0)),
			 TC_ACT_SHOT);
	assert_int_equal(e->n_res, 3);
	inet_pton(AF_INET, PEER4, prober);
	inet_pton(AF_INET, POD4, target);
	assert_int_equal(e->res[0].result, ZT_PROBE_STRAY_DENIED);
	assert_int_equal(e->res[0].family, 4);
	assert_int_equal(e->res[0].proto, IPPROTO_TCP);
	assert_int_equal(e->res[0].port, 22);
	assert_int_equal(e->res[0].prober_port, 41000);
	assert_int_equal(e->res[0].ifindex, if_pod);
	assert_memory_equal(e->res[0].prober, prober, 16);
	assert_memory_equal(e->res[0].target, target, 16);
	assert_int_equal(e->res[1].port, 23);
	assert_int_equal(e->res[2].port, 25);
	/* None of these is one. */
	assert_int_equal(to_pod(e, tcp4p(&p, PEER4, POD4, 41000, 26, TCP_RST | TCP_ACK, 0)),
			 TC_ACT_SHOT);
	assert_int_equal(to_pod(e, tcp4p(&p, PEER4, POD4, 41000, 27, TCP_FIN | TCP_RST, 0)),
			 TC_ACT_SHOT);
	assert_int_equal(to_pod(e, tcp4p(&p, PEER4, POD4, 41000, 8080, TCP_FIN | TCP_ACK, 0)),
			 TC_ACT_OK);
	assert_int_equal(from_pod(e, tcp4p(&p, POD4, PEER4, 41000, 22, TCP_FIN | TCP_ACK, 0)),
			 TC_ACT_SHOT);
	assert_int_equal(e->n_res, 3);
	assert_int_equal(ct_count(e), 0);
	assert_int_equal(e->n_ev, 0);
}

/*
 * A TCP session whose handshake completed goes out whole at the packet that
 * closes it (both FINs, or a reset), once, while probe events are on, and
 * the entry says so; the brute-force detector gets it then, not at the next
 * sweep. Not a connection the server refused, nor the receiving endpoint's
 * entry of a flow between two endpoints (the source's speaks for it).
 */
static void test_session_end_event(void **state)
{
	struct env *e = *state;
	struct zt_guard_cfg cfg = { .flags = ZT_GCF_ACTIVITY, .probe_rate = 1000 };
	struct zt_ct_key k = ct_key(if_pod, IPPROTO_TCP, POD4, PEER4, 41000, 443);
	struct zt_ct_key k2 = ct_key(if_pod, IPPROTO_TCP, POD4, PEER4, 41001, 443);
	struct zt_ct_val v;
	struct pg_pkt p;
	__u32 zero = 0;

	std_setup(e);
	allow_port(e, 1, ZT_DIR_EGRESS, PEER_ID, IPPROTO_TCP, 443, 11);
	/* Probe events off: a closed session stays the sweep's. */
	from_pod(e, tcp4p(&p, POD4, PEER4, 41002, 443, TCP_SYN, 0));
	to_pod(e, tcp4p(&p, PEER4, POD4, 443, 41002, TCP_SYN | TCP_ACK, 0));
	from_pod(e, tcp4p(&p, POD4, PEER4, 41002, 443, TCP_RST, 0));
	assert_int_equal(e->n_ses, 0);
	assert_int_equal(ct_get(e, ct_key(if_pod, IPPROTO_TCP, POD4, PEER4, 41002, 443), &v), 0);
	assert_int_equal(v.state, ZT_CT_CLOSED);
	assert_int_equal(v.session_sent, 0);
	cfg.flags |= ZT_GCF_PROBES;
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(e->skel->maps.guard_cfg), &zero, &cfg, 0),
			 0);

	/* A login refused, then both FINs: the second one sends it. */
	from_pod(e, tcp4p(&p, POD4, PEER4, 41000, 443, TCP_SYN, 0));
	to_pod(e, tcp4p(&p, PEER4, POD4, 443, 41000, TCP_SYN | TCP_ACK, 0));
	from_pod(e, tcp4p(&p, POD4, PEER4, 41000, 443, TCP_ACK, 0));
	from_pod(e, tcp4p(&p, POD4, PEER4, 41000, 443, TCP_ACK | TCP_PSH, 40));
	to_pod(e, with_text(tcp4p(&p, PEER4, POD4, 443, 41000, TCP_ACK | TCP_PSH, 22),
			    "530 Login incorrect.\r\n"));
	to_pod(e, tcp4p(&p, PEER4, POD4, 443, 41000, TCP_FIN | TCP_ACK, 0));
	assert_int_equal(e->n_ses, 0);
	assert_int_equal(from_pod(e, tcp4p(&p, POD4, PEER4, 41000, 443, TCP_FIN | TCP_ACK, 0)),
			 TC_ACT_OK);
	assert_int_equal(e->n_ses, 1);
	assert_int_equal(e->ses[0].hdr.len, sizeof(struct zt_ev_session));
	assert_memory_equal(&e->ses[0].key, &k, sizeof(k));
	assert_int_equal(e->ses[0].val.state, ZT_CT_CLOSED);
	assert_int_equal(e->ses[0].val.dir, ZT_DIR_EGRESS);
	assert_int_equal(e->ses[0].val.d[0].packets, 4);
	assert_int_equal(e->ses[0].val.d[1].packets, 3);
	assert_int_equal(e->ses[0].val.refused, 1);
	assert_int_equal(e->ses[0].val.resp, ZT_CT_RESP_REFUSED);
	assert_int_equal(e->ses[0].val.session_sent, 1);
	assert_int_equal(ct_get(e, k, &v), 0);
	assert_int_equal(v.session_sent, 1);
	/* The last ACK, a retransmitted FIN, a late reset: no second one. */
	to_pod(e, tcp4p(&p, PEER4, POD4, 443, 41000, TCP_ACK, 0));
	from_pod(e, tcp4p(&p, POD4, PEER4, 41000, 443, TCP_FIN | TCP_ACK, 0));
	from_pod(e, tcp4p(&p, POD4, PEER4, 41000, 443, TCP_RST, 0));
	assert_int_equal(e->n_ses, 1);

	/* A reset closes one too, from either side. */
	from_pod(e, tcp4p(&p, POD4, PEER4, 41001, 443, TCP_SYN, 0));
	to_pod(e, tcp4p(&p, PEER4, POD4, 443, 41001, TCP_SYN | TCP_ACK, 0));
	from_pod(e, tcp4p(&p, POD4, PEER4, 41001, 443, TCP_ACK | TCP_PSH, 40));
	to_pod(e, tcp4p(&p, PEER4, POD4, 443, 41001, TCP_RST | TCP_ACK, 0));
	assert_int_equal(e->n_ses, 2);
	assert_memory_equal(&e->ses[1].key, &k2, sizeof(k2));

	/* Refused by the server (no SYN-ACK): a probe's outcome, no session. */
	from_pod(e, tcp4p(&p, POD4, PEER4, 41003, 443, TCP_SYN, 0));
	to_pod(e, tcp4p(&p, PEER4, POD4, 443, 41003, TCP_RST | TCP_ACK, 0));
	assert_int_equal(e->n_ses, 2);

	/* Between two endpoints: the source's entry only. */
	ep_add(e, if_pod2, POD2_EP, PEER_ID);
	tcp4p(&p, POD4, PEER4, 40000, 443, TCP_SYN, 0);
	assert_int_equal(from_pod(e, &p), TC_ACT_OK);
	run_on(e, e->skel->progs.tc_to_pod, if_pod2, &p);
	tcp4p(&p, PEER4, POD4, 443, 40000, TCP_SYN | TCP_ACK, 0);
	run_on(e, e->skel->progs.tc_from_pod, if_pod2, &p);
	assert_int_equal(to_pod(e, &p), TC_ACT_OK);
	tcp4p(&p, POD4, PEER4, 40000, 443, TCP_RST, 0);
	assert_int_equal(from_pod(e, &p), TC_ACT_OK);
	run_on(e, e->skel->progs.tc_to_pod, if_pod2, &p);
	assert_int_equal(ct_get(e, ct_key(if_pod2, IPPROTO_TCP, POD4, PEER4, 40000, 443), &v), 0);
	assert_int_equal(v.state, ZT_CT_CLOSED);
	assert_int_equal(v.peer_ep_id, POD_EP);
	assert_int_equal(v.session_sent, 0);
	assert_int_equal(e->n_ses, 3);
	assert_int_equal(e->ses[2].key.ifindex, if_pod);
	assert_int_equal(e->ses[2].val.dir, ZT_DIR_EGRESS);
	assert_int_equal(e->bad_size, 0);
}

/*
 * A TCP flow from its SYN to its last ACK, and the packets that trail it:
 * one flow, one event, all packets on the one entry; once the entry is gone
 * (the exporter deletes a closed flow after its grace), a retransmitted
 * FIN or a late RST makes no second, one-packet flow.
 */
static void test_tcp_trailing_packets(void **state)
{
	struct env *e = *state;
	struct zt_ct_key k = ct_key(if_pod, IPPROTO_TCP, POD4, PEER4, 47000, 443);
	struct zt_ct_key k2 = ct_key(if_pod, IPPROTO_TCP, POD4, PEER4, 47001, 443);
	struct zt_ct_val v;
	struct pg_pkt p;

	std_setup(e);
	allow_port(e, 1, ZT_DIR_EGRESS, PEER_ID, IPPROTO_TCP, 443, 11);
	from_pod(e, tcp4p(&p, POD4, PEER4, 47000, 443, TCP_SYN, 0));
	to_pod(e, tcp4p(&p, PEER4, POD4, 443, 47000, TCP_SYN | TCP_ACK, 0));
	from_pod(e, tcp4p(&p, POD4, PEER4, 47000, 443, TCP_ACK, 0));
	from_pod(e, tcp4p(&p, POD4, PEER4, 47000, 443, TCP_ACK | TCP_PSH, 100));
	to_pod(e, tcp4p(&p, PEER4, POD4, 443, 47000, TCP_ACK | TCP_PSH, 500));
	/* The close: FIN out, FIN back, the last ACK out. */
	assert_int_equal(from_pod(e, tcp4p(&p, POD4, PEER4, 47000, 443, TCP_FIN | TCP_ACK, 0)),
			 TC_ACT_OK);
	assert_int_equal(to_pod(e, tcp4p(&p, PEER4, POD4, 443, 47000, TCP_FIN | TCP_ACK, 0)),
			 TC_ACT_OK);
	assert_int_equal(from_pod(e, tcp4p(&p, POD4, PEER4, 47000, 443, TCP_ACK, 0)), TC_ACT_OK);
	/* The peer did not get the last ACK: it sends its FIN again, and we answer. */
	assert_int_equal(to_pod(e, tcp4p(&p, PEER4, POD4, 443, 47000, TCP_FIN | TCP_ACK, 0)),
			 TC_ACT_OK);
	assert_int_equal(from_pod(e, tcp4p(&p, POD4, PEER4, 47000, 443, TCP_ACK, 0)), TC_ACT_OK);
	assert_int_equal(ct_count(e), 1);
	assert_int_equal(e->n_ev, 1);
	assert_int_equal(ct_get(e, k, &v), 0);
	assert_int_equal(v.state, ZT_CT_CLOSED);
	assert_int_equal(v.d[0].packets, 6);
	assert_int_equal(v.d[1].packets, 4);
	assert_int_equal(v.fin[0], 1);
	assert_int_equal(v.fin[1], 2);
	assert_int_equal(v.hs_done, 1);
	/* Recorded and deleted; then the peer's FIN once more and our RST to it. */
	assert_int_equal(bpf_map_delete_elem(bpf_map__fd(e->skel->maps.conntrack), &k), 0);
	to_pod(e, tcp4p(&p, PEER4, POD4, 443, 47000, TCP_FIN | TCP_ACK, 0));
	assert_int_equal(from_pod(e, tcp4p(&p, POD4, PEER4, 47000, 443, TCP_RST, 0)), TC_ACT_OK);
	assert_int_equal(from_pod(e, tcp4p(&p, POD4, PEER4, 47000, 443, TCP_RST | TCP_ACK, 0)),
			 TC_ACT_OK);
	assert_int_equal(ct_count(e), 0);
	assert_int_equal(e->n_ev, 1);

	/* A flow reset by the peer: its late RST/ACK after the entry is gone, the same. */
	from_pod(e, tcp4p(&p, POD4, PEER4, 47001, 443, TCP_SYN, 0));
	to_pod(e, tcp4p(&p, PEER4, POD4, 443, 47001, TCP_RST | TCP_ACK, 0));
	assert_int_equal(ct_get(e, k2, &v), 0);
	assert_int_equal(v.state, ZT_CT_CLOSED);
	assert_int_equal(v.hs_done, 0);
	assert_int_equal(e->n_ev, 2);
	assert_int_equal(bpf_map_delete_elem(bpf_map__fd(e->skel->maps.conntrack), &k2), 0);
	to_pod(e, tcp4p(&p, PEER4, POD4, 443, 47001, TCP_RST | TCP_ACK, 0));
	from_pod(e, tcp4p(&p, POD4, PEER4, 47001, 443, TCP_RST, 0));
	assert_int_equal(ct_count(e), 0);
	assert_int_equal(e->n_ev, 2);
	/* A new SYN on the same ports is a new flow again. */
	from_pod(e, tcp4p(&p, POD4, PEER4, 47001, 443, TCP_SYN, 0));
	assert_int_equal(ct_count(e), 1);
	assert_int_equal(e->n_ev, 3);
}

static struct zt_ep_stats ep_stats_of(struct env *e, __u32 ep_id)
{
	__u32 slot = ep_id & (ZT_EP_STATS_SLOTS - 1);
	struct zt_ep_stats v[e->n_cpus], sum;

	memset(&sum, 0, sizeof(sum));
	assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(e->skel->maps.ep_stats), &slot, v), 0);
	for (int c = 0; c < e->n_cpus; c++) {
		if (v[c].ep_id != ep_id)
			continue;
		for (int d = 0; d < ZT_DIR_MAX; d++) {
			sum.new_flows[d] += v[c].new_flows[d];
			sum.denied[d] += v[c].denied[d];
			sum.packets[d] += v[c].packets[d];
			sum.bytes[d] += v[c].bytes[d];
		}
	}
	return sum;
}

static void test_ep_stats(void **state)
{
	struct env *e = *state;
	struct zt_ep_stats s;
	struct pg_pkt p;
	__u64 out_bytes = 0, in_bytes = 0;

	std_setup(e);
	allow_port(e, 1, ZT_DIR_EGRESS, PEER_ID, IPPROTO_TCP, 443, 11);
	from_pod(e, tcp4(&p, POD4, PEER4, 45000, 443, TCP_SYN));
	out_bytes += ip_len(p);
	to_pod(e, tcp4(&p, PEER4, POD4, 443, 45000, TCP_SYN | TCP_ACK));
	in_bytes += ip_len(p);
	from_pod(e, tcp4(&p, POD4, PEER4, 45000, 443, TCP_ACK));
	out_bytes += ip_len(p);
	/* Denied both ways: a port no rule allows out, anything in. */
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 45001, 444, TCP_SYN)), TC_ACT_SHOT);
	out_bytes += ip_len(p);
	assert_int_equal(to_pod(e, tcp4(&p, PEER4, POD4, 45002, 22, TCP_SYN)), TC_ACT_SHOT);
	in_bytes += ip_len(p);
	assert_int_equal(to_pod(e, tcp4(&p, PEER4, POD4, 45002, 22, TCP_SYN)), TC_ACT_SHOT);
	in_bytes += ip_len(p);
	s = ep_stats_of(e, POD_EP);
	assert_int_equal(s.new_flows[ZT_DIR_EGRESS], 2);
	assert_int_equal(s.new_flows[ZT_DIR_INGRESS], 1);
	assert_int_equal(s.denied[ZT_DIR_EGRESS], 1);
	assert_int_equal(s.denied[ZT_DIR_INGRESS], 2);
	assert_int_equal(s.packets[ZT_DIR_EGRESS], 3);
	assert_int_equal(s.packets[ZT_DIR_INGRESS], 3);
	assert_int_equal(s.bytes[ZT_DIR_EGRESS], out_bytes);
	assert_int_equal(s.bytes[ZT_DIR_INGRESS], in_bytes);
	/* Another endpoint on the same slot takes it over: the first one's copy is gone. */
	ep_add(e, if_pod, POD_EP + ZT_EP_STATS_SLOTS, POD_ID);
	from_pod(e, tcp4(&p, POD4, PEER4, 45003, 443, TCP_SYN));
	assert_int_equal(ep_stats_of(e, POD_EP).packets[ZT_DIR_EGRESS], 0);
	assert_int_equal(ep_stats_of(e, POD_EP + ZT_EP_STATS_SLOTS).new_flows[ZT_DIR_EGRESS], 1);
}

/*
 * A packet of an established flow does not look the endpoint up: its entry
 * was evaluated at the current generations, and every change of a
 * registration publishes a generation. After one, the flow's next packet
 * reads the registration again: gone, it passes unaccounted; back (under
 * another number), the flow is evaluated for it and counted to it.
 */
static void test_endpoint_change_at_generation(void **state)
{
	struct env *e = *state;
	struct pg_pkt p;
	__u32 key = if_pod;

	std_setup(e);
	allow_port(e, 1, ZT_DIR_EGRESS, PEER_ID, IPPROTO_TCP, 443, 11);
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 45000, 443, TCP_SYN)), TC_ACT_OK);
	assert_int_equal(to_pod(e, tcp4(&p, PEER4, POD4, 443, 45000, TCP_SYN | TCP_ACK)),
			 TC_ACT_OK);
	assert_int_equal(e->n_ev, 1);
	/* The entry goes, no generation yet: the flow keeps its verdict and its endpoint. */
	assert_int_equal(bpf_map_delete_elem(bpf_map__fd(e->skel->maps.endpoints), &key), 0);
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 45000, 443, TCP_ACK)), TC_ACT_OK);
	assert_int_equal(ep_stats_of(e, POD_EP).packets[ZT_DIR_EGRESS], 2);
	assert_int_equal(stat_of(e, ZT_TCS_NO_ENDPOINT).packets, 0);
	/* The removal's generation: the interface is no endpoint, the flow passes unaccounted. */
	set_gen(e, 3);
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 45000, 443, TCP_ACK)), TC_ACT_OK);
	assert_int_equal(to_pod(e, tcp4(&p, PEER4, POD4, 443, 45000, TCP_ACK)), TC_ACT_OK);
	assert_int_equal(stat_of(e, ZT_TCS_NO_ENDPOINT).packets, 2);
	assert_int_equal(stat_of(e, ZT_TCS_NO_ENDPOINT).bytes, 2 * p.len);
	assert_int_equal(ep_stats_of(e, POD_EP).packets[ZT_DIR_EGRESS], 2);
	assert_int_equal(e->n_ev, 1);
	/* Registered again (another identity, isolated; another number): evaluated for it, denied. */
	ep_add(e, if_pod, POD_EP + 1, POD_ID + 100);
	iso_add(e, 1, ZT_DIR_EGRESS, POD_ID + 100, 1, 1, 0, ISO_RULE, ISO_RULE);
	set_gen(e, 5);
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 45000, 443, TCP_ACK)), TC_ACT_SHOT);
	assert_int_equal(e->n_ev, 2);
	assert_int_equal(ep_stats_of(e, POD_EP + 1).denied[ZT_DIR_EGRESS], 1);
	/* Its next packet takes the verdict from the entry, counted to the new number. */
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 45000, 443, TCP_ACK)), TC_ACT_SHOT);
	assert_int_equal(ep_stats_of(e, POD_EP + 1).denied[ZT_DIR_EGRESS], 2);
	assert_int_equal(e->n_ev, 2);
}

/* Packets from or to a watched address, each with its verdict. */
static void test_tc_capture(void **state)
{
	struct env *e = *state;
	struct zt_addr_key w = { .family = 4 };
	struct zt_watch_val wv = { .incident_id = 42 };
	struct zt_guard_cfg cfg = { .flags = ZT_GCF_ACTIVITY, .watch_count = 1 };
	struct pg_pkt p, q;
	__u32 zero = 0;

	inet_pton(AF_INET, PEER4, w.addr);
	std_setup(e);
	allow_port(e, 1, ZT_DIR_EGRESS, PEER_ID, IPPROTO_TCP, 443, 11);
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(e->skel->maps.watch), &w, &wv, 0), 0);
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(e->skel->maps.guard_cfg), &zero, &cfg, 0),
			 0);
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 46000, 443, TCP_SYN)), TC_ACT_OK);
	assert_int_equal(to_pod(e, tcp4(&q, PEER4, POD4, 46001, 22, TCP_SYN)), TC_ACT_SHOT);
	/* Not watched: nothing. */
	assert_int_equal(from_pod(e, tcp4(&p, POD4, WORLD4, 46002, 443, TCP_SYN)), TC_ACT_SHOT);
	assert_int_equal(e->n_cap, 2);
	tcp4(&p, POD4, PEER4, 46000, 443, TCP_SYN);
	assert_int_equal(e->cap[0].point, ZT_CAP_FROM_POD);
	assert_int_equal(e->cap[0].action, ZT_ACT_PASS);
	assert_int_equal(e->cap[0].reason, ZT_TCS_ALLOW_NEW);
	assert_int_equal(e->cap[0].matched, ZT_CAP_MATCH_DST);
	assert_int_equal(e->cap[0].incident_id, 42);
	assert_int_equal(e->cap[0].cap_len, p.len);
	assert_memory_equal(e->cap[0].data, p.buf, p.len);
	assert_int_equal(e->cap[1].point, ZT_CAP_TO_POD);
	assert_int_equal(e->cap[1].action, ZT_ACT_DROP);
	assert_int_equal(e->cap[1].reason, ZT_TCS_DENY_NEW);
	assert_int_equal(e->cap[1].matched, ZT_CAP_MATCH_SRC);
	assert_memory_equal(e->cap[1].data, q.buf, q.len);
	assert_int_equal(e->bad_size, 0);
}

/* ---- workload mTLS (bpf/lib/mtls.h) ---- */

static void mtls_cfg_set(struct env *e, __u8 mode)
{
	struct zt_mtls_cfg c = { .mode = mode,
				 .steer_port = 15009,
				 .agent_mark = ZT_MTLS_MARK_AGENT };
	__u32 zero = 0;

	assert_int_equal(bpf_map_update_elem(bpf_map__fd(e->skel->maps.mtls_cfg), &zero, &c, 0), 0);
}

/* An allow rule for one TCP port of the pod, with ZT_POL_F_* flags. */
static void allow_flags(struct env *e, __u8 dir, __u32 peer, __u16 port, __u8 flags, __u32 rule)
{
	struct zt_pol_val v = { .rule_id = rule,
				.audit_rule_id = rule,
				.verdict = ZT_VERDICT_ALLOW,
				.audit_verdict = ZT_VERDICT_ALLOW,
				.flags = flags };
	struct zt_pol_key k;

	zt_pol_key_fill(&k, ZT_POL_PLEN_FULL, 1, dir, POD_ID, peer, IPPROTO_TCP, port);
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(e->skel->maps.policy), &k, &v, 0), 0);
}

static __u64 mstat(struct env *e, __u32 slot)
{
	struct zt_counter vals[e->n_cpus];
	__u64 sum = 0;

	assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(e->skel->maps.mtls_stats), &slot, vals),
			 0);
	for (int i = 0; i < e->n_cpus; i++)
		sum += vals[i].packets;
	return sum;
}

static int to_pod_marked(struct env *e, const struct pg_pkt *p, __u32 mark)
{
	struct __sk_buff ctx = { .ifindex = if_pod, .mark = mark };
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = p->buf, .data_size_in = (__u32)p->len,
		    .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .repeat = 1);

	assert_int_equal(bpf_prog_test_run_opts(bpf_program__fd(e->skel->progs.tc_to_pod), &o), 0);
	ring_buffer__consume(e->rb);
	return (int)o.retval;
}

/*
 * requireMutualAuth egress with no agent socket to take the connection (no
 * listener in this namespace): the pod's SYN is dropped, never passed in
 * clear, and counted as no_agent; the flow is marked in conntrack.
 */
static void test_mtls_no_agent_drops(void **state)
{
	struct env *e = *state;
	struct zt_ct_val v;
	struct pg_pkt p;

	std_setup(e);
	mtls_cfg_set(e, ZT_MTLS_DP_POLICY);
	allow_flags(e, ZT_DIR_EGRESS, PEER_ID, 7000, ZT_POL_F_REQUIRE_MTLS, 21);
	allow_port(e, 1, ZT_DIR_EGRESS, PEER_ID, IPPROTO_TCP, 7001, 22);
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 40000, 7000, TCP_SYN)), TC_ACT_SHOT);
	assert_int_equal(ct_get(e, ct_key(if_pod, IPPROTO_TCP, POD4, PEER4, 40000, 7000), &v), 0);
	assert_int_equal(v.verdict, ZT_VERDICT_ALLOW);
	assert_int_equal(v.mtls, ZT_CT_MTLS_NEED);
	assert_int_equal(mstat(e, ZT_MTLS_DS_NO_AGENT), 1);
	/* Later packets of the flow too. */
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 40000, 7000, TCP_ACK)), TC_ACT_SHOT);
	assert_int_equal(mstat(e, ZT_MTLS_DS_NO_AGENT), 2);
	/* A rule without the requirement is not touched. */
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 40001, 7001, TCP_SYN)), TC_ACT_OK);
	assert_int_equal(ct_get(e, ct_key(if_pod, IPPROTO_TCP, POD4, PEER4, 40001, 7001), &v), 0);
	assert_int_equal(v.mtls, 0);
	/* Nothing was handed to an agent. */
	assert_int_equal(mstat(e, ZT_MTLS_DS_STEERED), 0);
}

/* requireMutualAuth ingress: only what the agent sent (its mark) reaches the pod. */
static void test_mtls_bypass_drops(void **state)
{
	struct env *e = *state;
	struct zt_ct_val v;
	struct pg_pkt p;

	std_setup(e);
	mtls_cfg_set(e, ZT_MTLS_DP_POLICY);
	allow_flags(e, ZT_DIR_INGRESS, PEER_ID, 7000, ZT_POL_F_REQUIRE_MTLS, 31);
	assert_int_equal(to_pod_marked(e, tcp4(&p, PEER4, POD4, 50000, 7000, TCP_SYN), 0),
			 TC_ACT_SHOT);
	assert_int_equal(mstat(e, ZT_MTLS_DS_BYPASS), 1);
	assert_int_equal(to_pod_marked(e, tcp4(&p, PEER4, POD4, 50001, 7000, TCP_SYN), 0x1234),
			 TC_ACT_SHOT);
	assert_int_equal(mstat(e, ZT_MTLS_DS_BYPASS), 2);
	assert_int_equal(
		to_pod_marked(e, tcp4(&p, PEER4, POD4, 50002, 7000, TCP_SYN), ZT_MTLS_MARK_AGENT),
		TC_ACT_OK);
	assert_int_equal(mstat(e, ZT_MTLS_DS_FROM_AGENT), 1);
	assert_int_equal(ct_get(e, ct_key(if_pod, IPPROTO_TCP, PEER4, POD4, 50002, 7000), &v), 0);
	assert_int_equal(v.mtls, ZT_CT_MTLS_NEED | ZT_CT_MTLS_VIA);
	/* The dropped bypass attempts are not recorded as tunnelled. */
	assert_int_equal(ct_get(e, ct_key(if_pod, IPPROTO_TCP, PEER4, POD4, 50000, 7000), &v), 0);
	assert_int_equal(v.mtls, ZT_CT_MTLS_NEED);
}

/*
 * The agent delivering a tunnelled connection to a port this node asks no
 * mTLS for (policy mode; another node's rule or strict mode sent it): the
 * flow is the agent's, so the pod's replies are held for the agent's
 * socket (none here: no_agent) and never routed past it, also after a
 * policy change. Clear text to that port stays as policy says.
 */
static void test_mtls_agent_delivery(void **state)
{
	struct env *e = *state;
	struct zt_ct_val v;
	struct pg_pkt p;
	__u64 no0;

	std_setup(e);
	mtls_cfg_set(e, ZT_MTLS_DP_POLICY);
	allow_port(e, 1, ZT_DIR_INGRESS, PEER_ID, IPPROTO_TCP, 7001, 61);
	assert_int_equal(to_pod_marked(e, tcp4(&p, PEER4, POD4, 50000, 7001, TCP_SYN), 0),
			 TC_ACT_OK);
	assert_int_equal(ct_get(e, ct_key(if_pod, IPPROTO_TCP, PEER4, POD4, 50000, 7001), &v), 0);
	assert_int_equal(v.mtls, 0);
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 7001, 50000, TCP_SYN | TCP_ACK)),
			 TC_ACT_OK);
	assert_int_equal(
		to_pod_marked(e, tcp4(&p, PEER4, POD4, 50001, 7001, TCP_SYN), ZT_MTLS_MARK_AGENT),
		TC_ACT_OK);
	assert_int_equal(ct_get(e, ct_key(if_pod, IPPROTO_TCP, PEER4, POD4, 50001, 7001), &v), 0);
	assert_int_equal(v.mtls, ZT_CT_MTLS_NEED | ZT_CT_MTLS_VIA);
	no0 = mstat(e, ZT_MTLS_DS_NO_AGENT);
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 7001, 50001, TCP_SYN | TCP_ACK)),
			 TC_ACT_SHOT);
	assert_int_equal(mstat(e, ZT_MTLS_DS_NO_AGENT), no0 + 1);
	/* The next generation, the same rule: still the agent's. */
	ipc_std(e, 0);
	isolate(e, 0);
	allow_port(e, 0, ZT_DIR_INGRESS, PEER_ID, IPPROTO_TCP, 7001, 62);
	set_gen(e, 2);
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 7001, 50001, TCP_ACK)), TC_ACT_SHOT);
	assert_int_equal(mstat(e, ZT_MTLS_DS_NO_AGENT), no0 + 2);
	assert_int_equal(ct_get(e, ct_key(if_pod, IPPROTO_TCP, PEER4, POD4, 50001, 7001), &v), 0);
	assert_int_equal(v.gen, 2);
	assert_int_equal(v.mtls, ZT_CT_MTLS_NEED | ZT_CT_MTLS_VIA);
}

/* mtls.mode off (or no agent ever configured it): the flags change nothing. */
static void test_mtls_off_passes(void **state)
{
	struct env *e = *state;
	struct zt_ct_val v;
	struct pg_pkt p;

	std_setup(e);
	allow_flags(e, ZT_DIR_EGRESS, PEER_ID, 7000, ZT_POL_F_REQUIRE_MTLS | ZT_POL_F_REQUIRE_TLS,
		    41);
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 40000, 7000, TCP_SYN)), TC_ACT_OK);
	assert_int_equal(ct_get(e, ct_key(if_pod, IPPROTO_TCP, POD4, PEER4, 40000, 7000), &v), 0);
	assert_int_equal(v.mtls, 0);
	assert_int_equal(mstat(e, ZT_MTLS_DS_NO_AGENT), 0);
}

/* mode strict: a TCP flow to a pod CIDR of another node needs the agent, rule or not. */
static void test_mtls_strict_remote(void **state)
{
	struct env *e = *state;
	struct zt_ip4_key k = { .prefixlen = 16, .addr = { 198, 19, 0, 0 } };
	struct zt_ct_val v;
	struct pg_pkt p;
	__u32 one = 1;

	std_setup(e);
	mtls_cfg_set(e, ZT_MTLS_DP_STRICT);
	assert_int_equal(
		bpf_map_update_elem(bpf_map__fd(e->skel->maps.mtls_remote_v4), &k, &one, 0), 0);
	allow_port(e, 1, ZT_DIR_EGRESS, ZT_ID_WORLD_V4, IPPROTO_TCP, 80, 51);
	allow_port(e, 1, ZT_DIR_EGRESS, PEER_ID, IPPROTO_TCP, 80, 52);
	assert_int_equal(from_pod(e, tcp4(&p, POD4, WORLD4, 40000, 80, TCP_SYN)), TC_ACT_SHOT);
	assert_int_equal(ct_get(e, ct_key(if_pod, IPPROTO_TCP, POD4, WORLD4, 40000, 80), &v), 0);
	assert_int_equal(v.mtls, ZT_CT_MTLS_NEED);
	/* A destination outside the other nodes' pod CIDRs stays as policy says. */
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 40001, 80, TCP_SYN)), TC_ACT_OK);
	assert_int_equal(ct_get(e, ct_key(if_pod, IPPROTO_TCP, POD4, PEER4, 40001, 80), &v), 0);
	assert_int_equal(v.mtls, 0);
}

/*
 * IPv6 requireMutualAuth egress takes the IPv4 path: the flow is marked
 * NEED, and with no agent socket for it its packets drop as no_agent (never
 * as unsupported, never in clear). The assignment to the agent's IPv6
 * listener itself needs a real tc ingress (BPF_PROG_TEST_RUN's skb does not
 * take bpf_sk_assign): tests/integration/mtls_agent.sh covers it.
 */
static void test_mtls_v6_needs_agent(void **state)
{
	struct env *e = *state;
	struct zt_ct_val v;
	struct pg_pkt p;

	std_setup(e);
	mtls_cfg_set(e, ZT_MTLS_DP_POLICY);
	allow_flags(e, ZT_DIR_EGRESS, PEER_ID, 7000, ZT_POL_F_REQUIRE_MTLS, 24);
	allow_port(e, 1, ZT_DIR_EGRESS, PEER_ID, IPPROTO_TCP, 7001, 25);
	assert_int_equal(from_pod(e, tcp6(&p, POD6, PEER6, 40000, 7000, TCP_SYN)), TC_ACT_SHOT);
	assert_int_equal(ct_get(e, ct_key(if_pod, IPPROTO_TCP, POD6, PEER6, 40000, 7000), &v), 0);
	assert_int_equal(v.verdict, ZT_VERDICT_ALLOW);
	assert_int_equal(v.mtls, ZT_CT_MTLS_NEED);
	assert_int_equal(mstat(e, ZT_MTLS_DS_NO_AGENT), 1);
	assert_int_equal(from_pod(e, tcp6(&p, POD6, PEER6, 40000, 7000, TCP_ACK)), TC_ACT_SHOT);
	assert_int_equal(mstat(e, ZT_MTLS_DS_NO_AGENT), 2);
	assert_int_equal(mstat(e, ZT_MTLS_DS_UNSUPPORTED), 0);
	assert_int_equal(mstat(e, ZT_MTLS_DS_STEERED), 0);
	/* A rule without the requirement is not touched. */
	assert_int_equal(from_pod(e, tcp6(&p, POD6, PEER6, 40001, 7001, TCP_SYN)), TC_ACT_OK);
	assert_int_equal(ct_get(e, ct_key(if_pod, IPPROTO_TCP, POD6, PEER6, 40001, 7001), &v), 0);
	assert_int_equal(v.mtls, 0);
	/* To the pod: only what the agent sent passes, IPv6 as IPv4. */
	allow_flags(e, ZT_DIR_INGRESS, PEER_ID, 7000, ZT_POL_F_REQUIRE_MTLS, 26);
	assert_int_equal(to_pod_marked(e, tcp6(&p, PEER6, POD6, 50000, 7000, TCP_SYN), 0),
			 TC_ACT_SHOT);
	assert_int_equal(mstat(e, ZT_MTLS_DS_BYPASS), 1);
	assert_int_equal(
		to_pod_marked(e, tcp6(&p, PEER6, POD6, 50001, 7000, TCP_SYN), ZT_MTLS_MARK_AGENT),
		TC_ACT_OK);
	assert_int_equal(mstat(e, ZT_MTLS_DS_FROM_AGENT), 1);
}

/* mode strict over IPv6: a pod CIDR of another node (mtls_remote_v6) needs the agent. */
static void test_mtls_strict_remote_v6(void **state)
{
	struct env *e = *state;
	struct zt_ip6_key k = { .prefixlen = 32, .addr = { 0x20, 0x01, 0x0d, 0xb8 } };
	struct zt_ct_val v;
	struct pg_pkt p;
	__u32 one = 1;

	std_setup(e);
	mtls_cfg_set(e, ZT_MTLS_DP_STRICT);
	allow_port(e, 1, ZT_DIR_EGRESS, PEER_ID, IPPROTO_TCP, 80, 53);
	/* Not (yet) a remote pod CIDR: as policy says. */
	assert_int_equal(from_pod(e, tcp6(&p, POD6, PEER6, 40000, 80, TCP_SYN)), TC_ACT_OK);
	assert_int_equal(ct_get(e, ct_key(if_pod, IPPROTO_TCP, POD6, PEER6, 40000, 80), &v), 0);
	assert_int_equal(v.mtls, 0);
	assert_int_equal(
		bpf_map_update_elem(bpf_map__fd(e->skel->maps.mtls_remote_v6), &k, &one, 0), 0);
	assert_int_equal(from_pod(e, tcp6(&p, POD6, PEER6, 40001, 80, TCP_SYN)), TC_ACT_SHOT);
	assert_int_equal(ct_get(e, ct_key(if_pod, IPPROTO_TCP, POD6, PEER6, 40001, 80), &v), 0);
	assert_int_equal(v.mtls, ZT_CT_MTLS_NEED);
	assert_int_equal(mstat(e, ZT_MTLS_DS_NO_AGENT), 1);
}

/* ---- requireTLS: the destination server's ServerHello (bpf/lib/tls.h) ---- */

#define TLS_PORT 8443
#define TLS_RULE 61u

static const uint8_t ext_tls13[] = {
	0x00, 0x33, 0x00, 0x24, 0x00, 0x1d, 0x00, 0x20, /* key_share x25519, 32-byte key */
	1,    2,    3,	  4,	5,    6,    7,	  8,	9,    10,   11,	  12,	13,
	14,   15,   16,	  17,	18,   19,   20,	  21,	22,   23,   24,	  25,	26,
	27,   28,   29,	  30,	31,   32,   0x00, 0x2b, 0x00, 0x02, 0x03, 0x04, /* supported_versions: TLS 1.3 */
};
static const uint8_t ext_tls12[] = {
	0xff, 0x01, 0x00, 0x01, 0x00, /* renegotiation_info */
	0x00, 0x0b, 0x00, 0x02, 0x01, 0x00, /* ec_point_formats */
	0x00, 0x17, 0x00, 0x00, /* extended_master_secret */
};
static const uint8_t ext_sv12[] = { 0x00, 0x2b, 0x00, 0x02, 0x03, 0x03 };

/* A ServerHello record with a 32-byte session id and these extensions; its length. */
static size_t server_hello(uint8_t *b, const uint8_t *ext, size_t ext_len)
{
	size_t hs = 2 + 32 + 1 + 32 + 2 + 1 + 2 + ext_len, o = 0;

	b[o++] = 22;
	b[o++] = 3;
	b[o++] = 3;
	pg_put16(b + o, (uint16_t)(hs + 4));
	o += 2;
	b[o++] = 2;
	b[o++] = 0;
	pg_put16(b + o, (uint16_t)hs);
	o += 2;
	b[o++] = 3;
	b[o++] = 3;
	memset(b + o, 0xab, 32); /* random */
	o += 32;
	b[o++] = 32;
	memset(b + o, 0xcd, 32); /* session id */
	o += 32;
	b[o++] = 0x13; /* TLS_AES_128_GCM_SHA256 */
	b[o++] = 0x01;
	b[o++] = 0; /* compression */
	pg_put16(b + o, (uint16_t)ext_len);
	o += 2;
	if (ext_len)
		memcpy(b + o, ext, ext_len);
	return o + ext_len;
}

/* A segment from the pod (the server) to PEER4:sport carrying these bytes. */
static struct pg_pkt *srv_seg(struct pg_pkt *p, int sport, const uint8_t *data, size_t len)
{
	mk(p, (struct pspec){ 4, IPPROTO_TCP, POD4, PEER4, TLS_PORT, sport, TCP_PSH | TCP_ACK,
			      (int)len });
	memcpy(p->buf + p->off[PG_PAYLOAD], data, len);
	return p;
}

/* The same connection's segments without payload, from the pod (1) or to it (0). */
static struct pg_pkt *bare_seg(struct pg_pkt *p, int sport, int from_pod, int flags)
{
	if (from_pod)
		return mk(p,
			  (struct pspec){ 4, IPPROTO_TCP, POD4, PEER4, TLS_PORT, sport, flags, 0 });
	return mk(p, (struct pspec){ 4, IPPROTO_TCP, PEER4, POD4, sport, TLS_PORT, flags, 0 });
}

/*
 * A requireTLS connection into the pod, opened by the agent (its mark):
 * the entry wants the check. keep_need 0 clears the tunnel bit so the
 * server's packets meet the check alone (this test namespace has no
 * agent socket to steer them to: that part is test_mtls_no_agent_drops').
 */
static void tls_open(struct env *e, int sport, int keep_need)
{
	struct zt_ct_key k = ct_key(if_pod, IPPROTO_TCP, PEER4, POD4, (__u16)sport, TLS_PORT);
	struct zt_ct_val v;
	struct pg_pkt p;

	assert_int_equal(to_pod_marked(e, tcp4(&p, PEER4, POD4, sport, TLS_PORT, TCP_SYN),
				       ZT_MTLS_MARK_AGENT),
			 TC_ACT_OK);
	assert_int_equal(ct_get(e, k, &v), 0);
	assert_int_equal(v.mtls, ZT_CT_MTLS_NEED | ZT_CT_TLS_CHECK | ZT_CT_MTLS_VIA);
	if (!keep_need) {
		v.mtls &= ~(ZT_CT_MTLS_NEED | ZT_CT_MTLS_VIA);
		assert_int_equal(bpf_map_update_elem(bpf_map__fd(e->skel->maps.conntrack), &k, &v,
						     BPF_EXIST),
				 0);
	}
}

static __u8 tls_ct(struct env *e, int sport, __u8 *verdict)
{
	struct zt_ct_val v;

	assert_int_equal(
		ct_get(e, ct_key(if_pod, IPPROTO_TCP, PEER4, POD4, (__u16)sport, TLS_PORT), &v), 0);
	if (verdict)
		*verdict = v.verdict;
	return v.mtls;
}

static void tls_setup(struct env *e)
{
	std_setup(e);
	mtls_cfg_set(e, ZT_MTLS_DP_POLICY);
	allow_flags(e, ZT_DIR_INGRESS, PEER_ID, TLS_PORT, ZT_POL_F_REQUIRE_TLS, TLS_RULE);
}

/* The event that reported the failed check (the last one), checked in full. */
static void tls_event_is(struct env *e, int sport)
{
	struct zt_ev_policy *ev;

	assert_true(e->n_ev >= 2);
	ev = &e->ev[e->n_ev - 1];
	assert_int_equal(ev->hdr.type, ZT_EV_POLICY);
	assert_int_equal(ev->verdict, ZT_VERDICT_DENY);
	assert_int_equal(ev->reason, ZT_REASON_TLS);
	assert_int_equal(ev->revoked, 1);
	assert_int_equal(ev->rule_id, TLS_RULE);
	assert_int_equal(ev->dir, ZT_DIR_INGRESS);
	assert_int_equal(ev->sport, sport);
	assert_int_equal(ev->dport, TLS_PORT);
}

/* A TLS 1.3 ServerHello (supported_versions after key_share) passes; the flow stays open. */
static void test_tls13_server_passes(void **state)
{
	struct env *e = *state;
	uint8_t b[512];
	struct pg_pkt p;
	__u8 verdict;
	size_t n;

	tls_setup(e);
	tls_open(e, 50100, 0);
	/* The pod's SYN-ACK carries no payload: still pending. */
	assert_int_equal(from_pod(e, bare_seg(&p, 50100, 1, TCP_SYN | TCP_ACK)), TC_ACT_OK);
	/* The client's bytes (a ClientHello, towards the pod) are not what is checked. */
	assert_int_equal(to_pod_marked(e, tcp4(&p, PEER4, POD4, 50100, TLS_PORT, TCP_ACK),
				       ZT_MTLS_MARK_AGENT),
			 TC_ACT_OK);
	assert_int_equal(tls_ct(e, 50100, NULL), ZT_CT_TLS_CHECK);
	n = server_hello(b, ext_tls13, sizeof(ext_tls13));
	assert_int_equal(from_pod(e, srv_seg(&p, 50100, b, n)), TC_ACT_OK);
	assert_int_equal(tls_ct(e, 50100, &verdict), ZT_CT_TLS_OK);
	assert_int_equal(verdict, ZT_VERDICT_ALLOW);
	assert_int_equal(mstat(e, ZT_MTLS_DS_TLS13), 1);
	/* Checked once: later payload (encrypted records, anything) passes as it is. */
	assert_int_equal(
		from_pod(e, srv_seg(&p, 50100, (const uint8_t *)"\x17\x03\x03\x00\x01x", 6)),
		TC_ACT_OK);
	assert_int_equal(mstat(e, ZT_MTLS_DS_TLS13), 1);
	assert_int_equal(mstat(e, ZT_MTLS_DS_TLS_OLD) + mstat(e, ZT_MTLS_DS_TLS_NOT_TLS) +
				 mstat(e, ZT_MTLS_DS_TLS_SPLIT),
			 0);

	/* A HelloRetryRequest is a ServerHello with supported_versions 1.3 too: passes. */
	tls_open(e, 50101, 0);
	n = server_hello(b, ext_tls13, sizeof(ext_tls13));
	memcpy(b + 11,
	       "\xcf\x21\xad\x74\xe5\x9a\x61\x11\xbe\x1d\x8c\x02\x1e\x65\xb8\x91"
	       "\xc2\xa2\x11\x16\x7a\xbb\x8c\x5e\x07\x9e\x09\xe2\xc8\xa8\x33\x9c",
	       32);
	assert_int_equal(from_pod(e, srv_seg(&p, 50101, b, n)), TC_ACT_OK);
	assert_int_equal(tls_ct(e, 50101, NULL), ZT_CT_TLS_OK);
}

/* A TLS 1.2 ServerHello drops the flow: counted, reported, and every later packet drops. */
static void test_tls12_server_drops(void **state)
{
	struct env *e = *state;
	uint8_t b[512];
	struct pg_pkt p;
	__u8 verdict;
	size_t n;

	tls_setup(e);
	tls_open(e, 50200, 0);
	n = server_hello(b, ext_tls12, sizeof(ext_tls12));
	/* The refused segment goes on as the client's reset (test_tls_refusal_resets). */
	assert_int_equal(from_pod(e, srv_seg(&p, 50200, b, n)), TC_ACT_OK);
	assert_int_equal(tls_ct(e, 50200, &verdict), ZT_CT_TLS_BAD);
	assert_int_equal(verdict, ZT_VERDICT_DENY);
	assert_int_equal(mstat(e, ZT_MTLS_DS_TLS_OLD), 1);
	tls_event_is(e, 50200);
	/* Retransmission, the client's next bytes, an ACK: all dropped, no second event. */
	n = (size_t)e->n_ev;
	assert_int_equal(from_pod(e, srv_seg(&p, 50200, b, 100)), TC_ACT_SHOT);
	assert_int_equal(to_pod_marked(e, tcp4(&p, PEER4, POD4, 50200, TLS_PORT, TCP_ACK),
				       ZT_MTLS_MARK_AGENT),
			 TC_ACT_SHOT);
	assert_int_equal(from_pod(e, bare_seg(&p, 50200, 1, TCP_ACK)), TC_ACT_SHOT);
	assert_int_equal((size_t)e->n_ev, n);
	assert_int_equal(mstat(e, ZT_MTLS_DS_TLS_OLD), 1);
	/* A policy change (the same rules) does not give the flow back. */
	set_gen(e, 3);
	assert_int_equal(from_pod(e, bare_seg(&p, 50200, 1, TCP_ACK)), TC_ACT_SHOT);
	assert_int_equal(tls_ct(e, 50200, &verdict), ZT_CT_TLS_BAD);
	assert_int_equal(verdict, ZT_VERDICT_DENY);

	/* A TLS 1.3-shaped ServerHello that selects 1.2 in supported_versions drops too. */
	tls_open(e, 50201, 0);
	n = server_hello(b, ext_sv12, sizeof(ext_sv12));
	assert_int_equal(from_pod(e, srv_seg(&p, 50201, b, n)), TC_ACT_OK);
	assert_int_equal(mstat(e, ZT_MTLS_DS_TLS_OLD), 2);
	/* And one without any extension (TLS 1.0/1.1 style). */
	tls_open(e, 50202, 0);
	n = server_hello(b, NULL, 0);
	assert_int_equal(from_pod(e, srv_seg(&p, 50202, b, n - 2)), TC_ACT_OK);
	assert_int_equal(mstat(e, ZT_MTLS_DS_TLS_OLD), 2);
	assert_int_equal(mstat(e, ZT_MTLS_DS_TLS13), 0);
}

/* A server answering in clear text, or with another TLS message first, drops. */
static void test_tls_plaintext_drops(void **state)
{
	struct env *e = *state;
	static const char http[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
	static const uint8_t alert[] = { 21, 3, 3, 0, 2, 2, 70 }; /* protocol_version alert */
	uint8_t b[512];
	struct pg_pkt p;
	size_t n;

	tls_setup(e);
	tls_open(e, 50300, 0);
	assert_int_equal(from_pod(e, srv_seg(&p, 50300, (const uint8_t *)http, sizeof(http) - 1)),
			 TC_ACT_OK);
	assert_int_equal(tls_ct(e, 50300, NULL), ZT_CT_TLS_BAD);
	assert_int_equal(mstat(e, ZT_MTLS_DS_TLS_NOT_TLS), 1);
	tls_event_is(e, 50300);
	tls_open(e, 50301, 0);
	assert_int_equal(from_pod(e, srv_seg(&p, 50301, alert, sizeof(alert))), TC_ACT_OK);
	assert_int_equal(mstat(e, ZT_MTLS_DS_TLS_NOT_TLS), 2);
	/* A handshake record that is not a ServerHello (type 11, Certificate). */
	tls_open(e, 50302, 0);
	n = server_hello(b, ext_tls13, sizeof(ext_tls13));
	b[5] = 11;
	assert_int_equal(from_pod(e, srv_seg(&p, 50302, b, n)), TC_ACT_OK);
	assert_int_equal(mstat(e, ZT_MTLS_DS_TLS_NOT_TLS), 3);
	/* One byte, not a record's first. */
	tls_open(e, 50303, 0);
	assert_int_equal(from_pod(e, srv_seg(&p, 50303, (const uint8_t *)"x", 1)), TC_ACT_OK);
	assert_int_equal(mstat(e, ZT_MTLS_DS_TLS_NOT_TLS), 4);
	/* An extension whose length runs past the extensions' end. */
	tls_open(e, 50304, 0);
	n = server_hello(b, ext_tls13, sizeof(ext_tls13));
	b[n - sizeof(ext_tls13) + 2] = 0xff; /* key_share length 0xff24 */
	assert_int_equal(from_pod(e, srv_seg(&p, 50304, b, n)), TC_ACT_OK);
	assert_int_equal(mstat(e, ZT_MTLS_DS_TLS_NOT_TLS), 5);
	assert_int_equal(mstat(e, ZT_MTLS_DS_TLS13), 0);
}

/*
 * A ServerHello split across segments: supported_versions is not in the
 * first one. Not reassembled: the flow drops (fail closed, counted split).
 * If supported_versions (1.3) is in the first segment, the rest of the
 * record may follow later: that passes.
 */
static void test_tls_split_fails_closed(void **state)
{
	struct env *e = *state;
	uint8_t b[512];
	struct pg_pkt p;
	size_t n;

	tls_setup(e);
	n = server_hello(b, ext_tls13, sizeof(ext_tls13));
	tls_open(e, 50400, 0);
	assert_int_equal(from_pod(e, srv_seg(&p, 50400, b, 60)), TC_ACT_OK);
	assert_int_equal(tls_ct(e, 50400, NULL), ZT_CT_TLS_BAD);
	assert_int_equal(mstat(e, ZT_MTLS_DS_TLS_SPLIT), 1);
	tls_event_is(e, 50400);
	/* The rest of it in the next segment comes too late. */
	assert_int_equal(from_pod(e, srv_seg(&p, 50400, b + 60, n - 60)), TC_ACT_SHOT);
	/* Only the record header. */
	tls_open(e, 50401, 0);
	assert_int_equal(from_pod(e, srv_seg(&p, 50401, b, 3)), TC_ACT_OK);
	assert_int_equal(mstat(e, ZT_MTLS_DS_TLS_SPLIT), 2);
	/* supported_versions first: a cut after it is judged on what is there. */
	{
		uint8_t x[sizeof(ext_tls13)];

		memcpy(x, ext_tls13 + 40, 6);
		memcpy(x + 6, ext_tls13, 40);
		n = server_hello(b, x, sizeof(x));
	}
	tls_open(e, 50402, 0);
	assert_int_equal(from_pod(e, srv_seg(&p, 50402, b, n - 20)), TC_ACT_OK);
	assert_int_equal(tls_ct(e, 50402, NULL), ZT_CT_TLS_OK);
	assert_int_equal(mstat(e, ZT_MTLS_DS_TLS_SPLIT), 2);
}

/* The ones'-complement sum of n bytes (n even), folded. */
static uint32_t sum16(const uint8_t *b, size_t n, uint32_t s)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)b[i] << 8 | b[i + 1];
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return s;
}

/* An IPv4 frame (Ethernet at 0) holding a bare 20-byte TCP header: both checksums hold. */
static void rst4_is(const uint8_t *f, size_t len, const char *src, const char *dst, int sport,
		    int dport, uint32_t seq, uint32_t ack, int flags)
{
	const uint8_t *ip = f + 14, *th = ip + 20;
	uint8_t ps[12] = { 0 };
	struct in_addr a;

	assert_int_equal(len, 14 + 20 + 20);
	assert_int_equal(pg_get16(f + 12), ETH_P_IP);
	assert_int_equal(pg_get16(ip + 2), 40);
	assert_int_equal(sum16(ip, 20, 0), 0xffff);
	assert_int_equal(inet_pton(AF_INET, src, &a), 1);
	assert_memory_equal(ip + 12, &a, 4);
	assert_int_equal(inet_pton(AF_INET, dst, &a), 1);
	assert_memory_equal(ip + 16, &a, 4);
	assert_int_equal(pg_get16(th), sport);
	assert_int_equal(pg_get16(th + 2), dport);
	assert_int_equal((uint32_t)pg_get16(th + 4) << 16 | pg_get16(th + 6), seq);
	assert_int_equal((uint32_t)pg_get16(th + 8) << 16 | pg_get16(th + 10), ack);
	assert_int_equal(th[12], 5 << 4);
	assert_int_equal(th[13], flags);
	memcpy(ps, ip + 12, 8);
	ps[9] = IPPROTO_TCP;
	ps[11] = 20;
	assert_int_equal(sum16(th, 20, sum16(ps, 12, 0)), 0xffff);
}

/*
 * A refused ServerHello resets both ends at once: the segment itself
 * becomes the client's reset (RST|ACK at the segment's seq, cut to its
 * header), and a copy goes back out of the pod's veth as the server's
 * reset (RST at the segment's ack, the server's next expected byte),
 * marked so tc_to_pod lets it through on the denied flow. The copy is read
 * from the veth's peer. Both carry correct IP and TCP checksums.
 */
static void test_tls_refusal_resets(void **state)
{
	struct env *e = *state;
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL) };
	uint8_t b[512], out[PG_BUF], got[2048];
	struct __sk_buff ctx = { .ifindex = if_pod };
	struct pg_pkt p, q;
	ssize_t n = 0;
	size_t hl;
	int fd, tries;

	assert_int_equal(system("ip link set ztt0 up && ip link set ztt1 up"), 0);
	fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, htons(ETH_P_ALL));
	assert_true(fd >= 0);
	sll.sll_ifindex = (int)if_nametoindex("ztt1");
	assert_int_equal(bind(fd, (struct sockaddr *)&sll, sizeof(sll)), 0);

	tls_setup(e);
	tls_open(e, 50600, 0);
	hl = server_hello(b, ext_tls12, sizeof(ext_tls12));
	srv_seg(&p, 50600, b, hl);
	/* seq 0x11223344 (the server's), ack 0x55667788 (the server's next expected byte) */
	memcpy(p.buf + p.off[PG_L4] + 4, "\x11\x22\x33\x44\x55\x66\x77\x88", 8);
	/* A valid IP checksum to start from: the datapath mends it, it does not make it. */
	pg_put16(p.buf + p.off[PG_IP] + 10, 0);
	pg_put16(p.buf + p.off[PG_IP] + 10, (uint16_t)~sum16(p.buf + p.off[PG_IP], 20, 0));
	{
		LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = p.buf, .data_size_in = (__u32)p.len,
			    .data_out = out, .data_size_out = sizeof(out), .ctx_in = &ctx,
			    .ctx_size_in = sizeof(ctx), .repeat = 1);

		assert_int_equal(
			bpf_prog_test_run_opts(bpf_program__fd(e->skel->progs.tc_from_pod), &o), 0);
		ring_buffer__consume(e->rb);
		assert_int_equal(o.retval, TC_ACT_OK);
		/* The client's reset, from the server's address. */
		rst4_is(out, o.data_size_out, POD4, PEER4, TLS_PORT, 50600, 0x11223344, 0x55667788,
			TCP_RST | TCP_ACK);
		/* Its Ethernet header unchanged. */
		assert_memory_equal(out, p.buf, 12);
	}
	assert_int_equal(tls_ct(e, 50600, NULL), ZT_CT_TLS_BAD);
	assert_int_equal(mstat(e, ZT_MTLS_DS_TLS_OLD), 1);
	assert_int_equal(mstat(e, ZT_MTLS_DS_TLS_RESET), 1);
	tls_event_is(e, 50600);

	/* The server's reset, as the pod would receive it. */
	for (tries = 0; tries < 100; tries++) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };

		assert_true(poll(&pfd, 1, 20) >= 0);
		n = recv(fd, got, sizeof(got), 0);
		if (n >= 34 && pg_get16(got + 12) == ETH_P_IP && got[14 + 9] == IPPROTO_TCP)
			break;
		n = 0;
	}
	close(fd);
	assert_true(n > 0);
	rst4_is(got, (size_t)n, PEER4, POD4, 50600, TLS_PORT, 0x55667788, 0, TCP_RST);
	assert_memory_equal(got, p.buf + 6, 6); /* to the pod's MAC */
	assert_memory_equal(got + 6, p.buf, 6);

	/* tc_to_pod passes that reset on the denied flow, with its mark only. */
	memcpy(q.buf, got, (size_t)n);
	q.len = (int)n;
	assert_int_equal(to_pod_marked(e, &q, ZT_MTLS_MARK_RST), TC_ACT_OK);
	assert_int_equal(to_pod_marked(e, &q, ZT_MTLS_MARK_AGENT), TC_ACT_SHOT);
	assert_int_equal(to_pod_marked(e, &q, 0), TC_ACT_SHOT);
	/* The mark alone opens nothing: on a tunnelled flow not refused, such a reset is a bypass. */
	tls_open(e, 50601, 1);
	pg_put16(q.buf + 14 + 20, 50601);
	assert_int_equal(to_pod_marked(e, &q, ZT_MTLS_MARK_RST), TC_ACT_SHOT);
	assert_int_equal(tls_ct(e, 50601, NULL),
			 ZT_CT_MTLS_NEED | ZT_CT_MTLS_VIA | ZT_CT_TLS_CHECK);
	assert_int_equal(system("ip link set ztt0 down && ip link set ztt1 down"), 0);
}

/*
 * With the tunnel bit kept: the check runs before the tunnel's gate. A 1.2
 * server is counted and denied (dropped as a TLS failure, not only for want
 * of an agent socket); only requireTLS ingress is checked, not requireMutualAuth,
 * not egress.
 */
static void test_tls_check_scope(void **state)
{
	struct env *e = *state;
	struct zt_ct_val v;
	uint8_t b[512];
	struct pg_pkt p;
	size_t n;

	tls_setup(e);
	tls_open(e, 50500, 1);
	n = server_hello(b, ext_tls12, sizeof(ext_tls12));
	assert_int_equal(from_pod(e, srv_seg(&p, 50500, b, n)), TC_ACT_SHOT);
	assert_int_equal(tls_ct(e, 50500, NULL), ZT_CT_MTLS_NEED | ZT_CT_MTLS_VIA | ZT_CT_TLS_BAD);
	assert_int_equal(mstat(e, ZT_MTLS_DS_TLS_OLD), 1);
	/* requireMutualAuth alone: no ServerHello check. */
	allow_flags(e, ZT_DIR_INGRESS, PEER_ID, 9443, ZT_POL_F_REQUIRE_MTLS, 62);
	assert_int_equal(
		to_pod_marked(e, tcp4(&p, PEER4, POD4, 50501, 9443, TCP_SYN), ZT_MTLS_MARK_AGENT),
		TC_ACT_OK);
	assert_int_equal(ct_get(e, ct_key(if_pod, IPPROTO_TCP, PEER4, POD4, 50501, 9443), &v), 0);
	assert_int_equal(v.mtls, ZT_CT_MTLS_NEED | ZT_CT_MTLS_VIA);
	/* requireTLS on the pod's egress: the pod is the client; its peer's node checks. */
	allow_flags(e, ZT_DIR_EGRESS, PEER_ID, 9444, ZT_POL_F_REQUIRE_TLS, 63);
	assert_int_equal(from_pod(e, tcp4(&p, POD4, PEER4, 50502, 9444, TCP_SYN)), TC_ACT_SHOT);
	assert_int_equal(ct_get(e, ct_key(if_pod, IPPROTO_TCP, POD4, PEER4, 50502, 9444), &v), 0);
	assert_int_equal(v.mtls, ZT_CT_MTLS_NEED);
	assert_int_equal(mstat(e, ZT_MTLS_DS_TLS13) + mstat(e, ZT_MTLS_DS_TLS_NOT_TLS), 0);
}

static int make_netns(void)
{
	if (unshare(CLONE_NEWNET) < 0) {
		fprintf(stderr, "test_tc_endpoint: unshare(CLONE_NEWNET): %s\n", strerror(errno));
		return -1;
	}
	if (system("ip link add ztt0 type veth peer name ztt1 >/dev/null 2>&1") != 0 ||
	    system("ip link add ztt2 type veth peer name ztt3 >/dev/null 2>&1") != 0) {
		fprintf(stderr, "test_tc_endpoint: cannot create veth pairs\n");
		return -1;
	}
	if_pod = ifindex_of("ztt0");
	if_pod2 = ifindex_of("ztt2");
	if_unreg = ifindex_of("ztt1");
	return if_pod && if_pod2 && if_unreg ? 0 : -1;
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_allow_rule_egress),
		T(test_deny_no_rule),
		T(test_default_deny),
		T(test_not_isolated_allows),
		T(test_ingress_allow_peer_is_source),
		T(test_reply_of_allowed_passes),
		T(test_reply_of_denied_drops),
		T(test_any_deny_beats_peer_allow),
		T(test_peer_deny_beats_any_allow),
		T(test_any_allow_alone),
		T(test_longest_entry_combined),
		T(test_port_range_blocks),
		T(test_any_proto_entry),
		T(test_ipblock_except),
		T(test_ipblock_matches_endpoint),
		T(test_ipblock_port_class),
		T(test_world_fallback_v4),
		T(test_world_fallback_v6),
		T(test_audit_isolated),
		T(test_audit_rule_deny),
		T(test_revocation),
		T(test_revocation_on_reply),
		T(test_gen_flip_still_allowed),
		T(test_gen_flip_grants),
		T(test_same_gen_uses_cache),
		T(test_gen0_denies),
		T(test_unregistered_ifindex_passes),
		T(test_arp_passes),
		T(test_nd_passes),
		T(test_malformed_drops),
		T(test_headers_beyond_linear),
		T(test_ct_tcp_lifecycle),
		T(test_ct_syn_flood_stays_half_open),
		T(test_ct_tcp_handshake_states),
		T(test_ct_rst_and_reuse),
		T(test_ct_udp_state),
		T(test_ct_expired_is_new),
		T(test_ct_per_endpoint),
		T(test_tcp_midstream_is_new_flow),
		T(test_vlan_tagged),
		T(test_stats_bytes),
		T(test_reply_from_higher_port),
		T(test_icmp_echo_reply_matches),
		T(test_icmp6_echo),
		T(test_ipv6_tcp_allow_deny_reply),
		T(test_ipv6_ipblock_and_ext_headers),
		T(test_later_fragment_port0),
		T(test_one_event_per_flow),
		T(test_ring_full_counted),
		T(test_ct_features),
		T(test_ct_zero_window),
		T(test_ct_refused_logins),
		T(test_ct_refused_live),
		T(test_ct_cred_form),
		T(test_ct_ssh_failures),
		T(test_tail_out_of_state),
		T(test_ct_request_acked),
		T(test_ct_served),
		T(test_ct_served_dns),
		T(test_ct_served_pong),
		T(test_ct_refused_db),
		T(test_ct_challenged),
		T(test_sctp_ports),
		T(test_handshake_verifies_client),
		T(test_closing_tail_is_no_flow),
		T(test_denied_fin_is_probe),
		T(test_session_end_event),
		T(test_tcp_trailing_packets),
		T(test_ep_stats),
		T(test_endpoint_change_at_generation),
		T(test_tc_capture),
		T(test_mtls_no_agent_drops),
		T(test_mtls_bypass_drops),
		T(test_mtls_agent_delivery),
		T(test_mtls_off_passes),
		T(test_mtls_strict_remote),
		T(test_mtls_v6_needs_agent),
		T(test_mtls_strict_remote_v6),
		T(test_tls13_server_passes),
		T(test_tls12_server_drops),
		T(test_tls_plaintext_drops),
		T(test_tls_split_fails_closed),
		T(test_tls_check_scope),
		T(test_tls_refusal_resets),
	};

	if (make_netns() < 0)
		return 1;
	return cmocka_run_group_tests_name("tc_endpoint", tests, NULL, NULL);
}
