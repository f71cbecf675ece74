// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The activity stage of xdp_guard and tc_uplink (include/ztagent.h,
 * "Activity") through BPF_PROG_TEST_RUN: sketch counts and the distinct-port
 * estimate, per-source buckets (limit, refill, isolation of an innocent
 * source that shares both sketch cells with a flooding one), per-destination
 * buckets (and a destination sharing one cell with a flooded one), signal
 * events, probe events and their outcomes seen by tc_uplink, resets to the
 * namespace's own addresses that no socket owns (and those it forwards or
 * owns, which count nothing), SYN protection
 * (the challenge packet, its answer, verified clients, the syn_protect map),
 * and captures (data, verdicts, rate, a full ring).
 *
 * Every test runs twice: through xdp_guard, then through tc_guard (the same
 * source built for TC ingress, loaded on the same maps), whose verdicts the
 * runner turns into XDP's (a redirect back out of the device is XDP_TX).
 *
 * Every test loads fresh programs (no pins) and writes guard_cfg as the
 * daemon does (src/guard/activity.c, through a datapath struct that holds
 * just the skeleton). The XDP program is attached, in generic mode, to a
 * veth of a private network namespace so that test runs do not wait for
 * RCU; no packet is sent there. Timing: tests start at the beginning of a
 * sketch window, and buckets are checked with bounds wide enough for a
 * loaded machine (counts at a rate over a sleep, not exact values).
 *
 * Needs root.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <net/if.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <linux/if_link.h>
#include <linux/pkt_cls.h>

#include "ztagent.h"
#include "pktgen.h"
#include "agent/util.h"
#include "guard/activity.h"
#include "guard/datapath.h"
#include "guard/events.h"
#include "xdp_guard.skel.h"
#include "tc_guard.skel.h"
#include "tc_uplink.skel.h"

#define S4 "198.18.5.1" /* the source under test */
#define T4 "198.18.5.2" /* another source */
#define D4 "198.19.0.10" /* the destination under test */
#define E4 "198.19.0.11" /* another destination */
#define S6 "2001:db8:5::1"
#define D6 "2001:db8:6::10"

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_PSH 0x08
#define TCP_ACK 0x10
#define TCP_URG 0x20

#define MAXREC 512

struct env {
	struct xdp_guard *x;
	struct tc_guard *t; /* the guard built for TC ingress, sharing x's maps */
	struct tc_uplink *u;
	struct zt_datapath dp;
	struct ring_buffer *rb;
	struct zt_guard_cfg cfg;
	struct zt_ev_activity act[MAXREC];
	struct zt_ev_probe probe[MAXREC];
	struct zt_ev_probe_result res[MAXREC];
	struct zt_ev_capture cap[MAXREC];
	int n_act, n_probe, n_res, n_cap, n_drop, n_bad;
};

static int hold_ifindex;
/* The second run of every test: packets go through tc_guard instead of xdp_guard. */
static int hook_tc;
static uint32_t hz = 250;
static cpu_set_t all_cpus; /* the CPUs the test may use (main pins it to one of them) */

/* ---- records ---- */

static int on_record(void *ctx, void *data, size_t size)
{
	struct env *e = ctx;
	int t = zt_events_check(data, size);

#define KEEP(arr, n)                                   \
	do {                                           \
		if ((n) < MAXREC)                      \
			memcpy(&(arr)[n], data, size); \
		(n)++;                                 \
	} while (0)
	switch (t) {
	case ZT_EV_SRC_ACTIVITY:
	case ZT_EV_DST_ACTIVITY:
		KEEP(e->act, e->n_act);
		break;
	case ZT_EV_PROBE:
		KEEP(e->probe, e->n_probe);
		break;
	case ZT_EV_PROBE_RESULT:
		KEEP(e->res, e->n_res);
		break;
	case ZT_EV_CAPTURE:
		KEEP(e->cap, e->n_cap);
		break;
	case ZT_EV_XDP_DROP:
		e->n_drop++;
		break;
	default:
		e->n_bad++;
	}
#undef KEEP
	return 0;
}

static void drain(struct env *e)
{
	ring_buffer__consume(e->rb);
}

static void forget(struct env *e)
{
	drain(e);
	e->n_act = e->n_probe = e->n_res = e->n_cap = e->n_drop = 0;
}

/* ---- set-up ---- */

static void cfg_write(struct env *e)
{
	__u32 zero = 0;

	assert_int_equal(bpf_map_update_elem(bpf_map__fd(e->x->maps.guard_cfg), &zero, &e->cfg, 0),
			 0);
}

static void cfg_limits(struct env *e, const struct zt_ratelimit_cfg *rl)
{
	assert_int_equal(zt_guard_cfg_set_ratelimits(&e->cfg, rl), 0);
	cfg_write(e);
}

/* The tests' signals: none, unless a test sets some. */
static void cfg_quiet(struct env *e)
{
	memset(&e->cfg.sig_src, 0, sizeof(e->cfg.sig_src));
	memset(&e->cfg.sig_dst, 0, sizeof(e->cfg.sig_dst));
}

/* Before obj's load: its maps are from's of the same name (no pins). */
static int share_maps(struct bpf_object *obj, struct bpf_object *from)
{
	struct bpf_map *m;

	bpf_object__for_each_map (m, obj) {
		struct bpf_map *fm = bpf_object__find_map_by_name(from, bpf_map__name(m));

		bpf_map__set_pin_path(m, NULL);
		if (fm && !bpf_map__is_internal(m) && bpf_map__reuse_fd(m, bpf_map__fd(fm)))
			return -1;
	}
	return 0;
}

static int env_load(struct env *e, __u32 ringbuf)
{
	struct bpf_map *m;

	memset(e, 0, sizeof(*e));
	e->x = xdp_guard__open();
	e->u = tc_uplink__open();
	if (!e->x || !e->u)
		return -1;
	bpf_object__for_each_map (m, e->x->obj)
		bpf_map__set_pin_path(m, NULL);
	bpf_map__set_max_entries(e->x->maps.events, ringbuf);
	if (xdp_guard__load(e->x))
		return -1;
	/* tc_uplink and tc_guard share every map of the same name, as the pins make them do. */
	if (share_maps(e->u->obj, e->x->obj) || tc_uplink__load(e->u))
		return -1;
	e->t = tc_guard__open();
	if (!e->t || share_maps(e->t->obj, e->x->obj) || tc_guard__load(e->t))
		return -1;
	e->rb = ring_buffer__new(bpf_map__fd(e->x->maps.events), on_record, e, NULL);
	if (!e->rb)
		return -1;
	e->dp.xdp = e->x;
	e->dp.ncpus = libbpf_num_possible_cpus();
	if (bpf_xdp_attach(hold_ifindex, bpf_program__fd(e->x->progs.xdp_guard), XDP_FLAGS_SKB_MODE,
			   NULL))
		return -1;
	zt_guard_cfg_defaults(&e->cfg, hz);
	e->cfg.seed = 0x5eed5eed12345677ULL;
	e->cfg.cookie_key[0] = 0x0123456789abcdefULL;
	e->cfg.cookie_key[1] = 0xfedcba9876543210ULL;
	e->cfg.flags |= ZT_GCF_PROBES;
	e->cfg.probe_rate = 1000000;
	e->cfg.signal_rate = 1000000;
	cfg_quiet(e);
	cfg_write(e);
	return 0;
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));

	if (!e || env_load(e, 1 << 20)) {
		fprintf(stderr, "cannot load the programs: %s (run as root)\n", strerror(errno));
		return -1;
	}
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;

	bpf_xdp_detach(hold_ifindex, XDP_FLAGS_SKB_MODE, NULL);
	ring_buffer__free(e->rb);
	tc_uplink__destroy(e->u);
	tc_guard__destroy(e->t);
	xdp_guard__destroy(e->x);
	free(e);
	return 0;
}

/* Waits, when needed, until a window has just begun: the test's counts share one. */
static void fresh_window(struct env *e)
{
	uint64_t j, ns, len = 1ULL << e->cfg.win_shift;

	assert_int_equal(zt_datapath_clock(&e->dp, &j, &ns), 0);
	if ((j & (len - 1)) > len / 3) {
		uint64_t wait_j = len - (j & (len - 1)) + 2;

		usleep((useconds_t)(wait_j * 1000000 / hz));
	}
}

/* The sketch window the kernel is in now. */
static uint64_t window_now(struct env *e)
{
	uint64_t j, ns;

	assert_int_equal(zt_datapath_clock(&e->dp, &j, &ns), 0);
	return j >> e->cfg.win_shift;
}

static void sleep_ms(int ms)
{
	usleep((useconds_t)ms * 1000);
}

/* ---- packets ---- */

struct pkt {
	struct pg_pkt p;
};

static struct pg_pkt *mk(struct pg_pkt *p, int family, int proto, const char *src, const char *dst,
			 int sport, int dport, int flags, uint32_t seq, int payload)
{
	struct pg_spec g = { .family = (uint8_t)family,
			     .src = src,
			     .dst = dst,
			     .proto = (uint8_t)proto,
			     .sport = (uint16_t)sport,
			     .dport = (uint16_t)dport,
			     .payload = (uint16_t)payload };

	assert_int_equal(pg_build(&g, p), 0);
	if (proto == IPPROTO_TCP) {
		uint8_t *th = p->buf + p->off[PG_L4];

		th[13] = (uint8_t)flags;
		th[4] = (uint8_t)(seq >> 24);
		th[5] = (uint8_t)(seq >> 16);
		th[6] = (uint8_t)(seq >> 8);
		th[7] = (uint8_t)seq;
	}
	return p;
}

static struct pg_pkt *syn4(struct pg_pkt *p, const char *src, const char *dst, int sport, int dport)
{
	return mk(p, 4, IPPROTO_TCP, src, dst, sport, dport, TCP_SYN, 1000, 0);
}

static struct pg_pkt *udp4(struct pg_pkt *p, const char *src, const char *dst, int sport, int dport)
{
	return mk(p, 4, IPPROTO_UDP, src, dst, sport, dport, 0, 0, 20);
}

/*
 * Runs the guard (xdp_guard, or tc_guard with hook_tc); the frame after the
 * run goes to out when given. tc_guard's verdict comes back as XDP's:
 * TC_ACT_OK is XDP_PASS, TC_ACT_SHOT XDP_DROP, and a redirect back out of
 * the device the packet came in on (the test run's) XDP_TX.
 */
static int xdp_run(struct env *e, const struct pg_pkt *p, struct pg_pkt *out)
{
	struct pg_pkt tmp;
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = p->buf, .data_size_in = (__u32)p->len,
		    .repeat = 1);
	int fd = hook_tc ? bpf_program__fd(e->t->progs.tc_guard) :
			   bpf_program__fd(e->x->progs.xdp_guard);

	if (!out)
		out = &tmp;
	o.data_out = out->buf;
	o.data_size_out = sizeof(out->buf);
	assert_int_equal(bpf_prog_test_run_opts(fd, &o), 0);
	out->len = o.data_size_out;
	if (!hook_tc)
		return (int)o.retval;
	switch (o.retval) {
	case TC_ACT_OK:
		return XDP_PASS;
	case TC_ACT_SHOT:
		return XDP_DROP;
	case TC_ACT_REDIRECT:
		return XDP_TX;
	default:
		fail_msg("tc_guard returned %u", o.retval);
		return -1;
	}
}

/* Runs tc_uplink (the uplink's egress) on a frame; it never drops. */
static void uplink_run(struct env *e, const struct pg_pkt *p)
{
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = p->buf, .data_size_in = (__u32)p->len,
		    .repeat = 1);

	assert_int_equal(bpf_prog_test_run_opts(bpf_program__fd(e->u->progs.tc_uplink), &o), 0);
	assert_int_equal(o.retval, TC_ACT_OK);
}

/* ---- readers ---- */

static __u64 xdp_stat(struct env *e, __u32 action, __u32 reason)
{
	struct zt_counter v[e->dp.ncpus];
	__u32 k = action * ZT_XR_MAX + reason;
	__u64 sum = 0;

	assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(e->x->maps.xdp_stats), &k, v), 0);
	for (int i = 0; i < e->dp.ncpus; i++)
		sum += v[i].packets;
	return sum;
}

static __u64 act_stat(struct env *e, __u32 which)
{
	uint64_t s[ZT_AS_MAX];

	assert_int_equal(zt_datapath_act_stats(&e->dp, s), 0);
	return s[which];
}

static struct zt_addr_key A(const char *s) {
	struct zt_addr_key a;

	assert_int_equal(zt_addr_parse(s, &a), 0);
	return a;
}

static struct zt_src_cell
src_act(struct env *e, const char *s)
{
	struct zt_addr_key a = A(s);
	struct zt_src_cell c;

	assert_int_equal(zt_guard_src_activity(&e->dp, &a, &c), 0);
	return c;
}

static struct zt_dst_cell dst_act(struct env *e, const char *s)
{
	struct zt_addr_key a = A(s);
	struct zt_dst_cell c;

	assert_int_equal(zt_guard_dst_activity(&e->dp, &a, &c), 0);
	return c;
}

static void words(const char *s, __u32 w[4], __u8 *fam)
{
	struct zt_addr_key a = A(s);

	memset(w, 0, 16);
	memcpy(w, a.addr, a.family == 4 ? 4 : 16);
	*fam = a.family;
}

/* ---- counts ---- */

static void test_counts(void **state)
{
	struct env *e = *state;
	struct pg_pkt p;
	struct zt_src_cell s;
	struct zt_dst_cell d;
	__u32 bytes = 0;
	int i;

	fresh_window(e);
	for (i = 0; i < 10; i++) {
		udp4(&p, S4, D4, 40000 + i, 53);
		assert_int_equal(xdp_run(e, &p, NULL), XDP_PASS);
		bytes += (__u32)p.len - 14;
	}
	for (i = 0; i < 5; i++) {
		syn4(&p, S4, D4, 41000 + i, 443);
		assert_int_equal(xdp_run(e, &p, NULL), XDP_PASS);
		bytes += (__u32)p.len - 14;
	}
	for (i = 0; i < 3; i++) { /* pure ACKs, no payload */
		mk(&p, 4, IPPROTO_TCP, S4, D4, 41000, 443, TCP_ACK, 1001, 0);
		assert_int_equal(xdp_run(e, &p, NULL), XDP_PASS);
		bytes += (__u32)p.len - 14;
	}
	/* An ACK with data is no "ACK alone". */
	mk(&p, 4, IPPROTO_TCP, S4, D4, 41000, 443, TCP_ACK, 1001, 100);
	assert_int_equal(xdp_run(e, &p, NULL), XDP_PASS);
	bytes += (__u32)p.len - 14;
	for (i = 0; i < 2; i++) {
		mk(&p, 4, IPPROTO_ICMP, S4, D4, 8, 0, 0, 0, 16);
		assert_int_equal(xdp_run(e, &p, NULL), XDP_PASS);
		bytes += (__u32)p.len - 14;
	}
	s = src_act(e, S4);
	assert_int_equal(s.count[ZT_RL_ALL], 21);
	assert_int_equal(s.count[ZT_RL_UDP], 10);
	assert_int_equal(s.count[ZT_RL_SYN], 5);
	assert_int_equal(s.count[ZT_RL_ICMP], 2);
	assert_int_equal(s.ack, 3);
	assert_int_equal(s.bytes, bytes);
	assert_int_equal(s.nhosts, 1);
	/* Ports opened: 53 (UDP), 443 (SYN); ICMP has none. */
	assert_int_equal(s.nports, 2);
	d = dst_act(e, D4);
	assert_int_equal(d.count[ZT_RL_ALL], 21);
	assert_int_equal(d.count[ZT_RL_SYN], 5);
	assert_int_equal(d.ack, 3);
	assert_int_equal(d.nsrcs, 1);
	/* Another source and destination are untouched. */
	assert_int_equal(src_act(e, T4).count[ZT_RL_ALL], 0);
	assert_int_equal(dst_act(e, E4).count[ZT_RL_ALL], 0);
	/* A server's answer (53 -> ephemeral) counts but opens nothing. */
	udp4(&p, S4, D4, 53, 40001);
	assert_int_equal(xdp_run(e, &p, NULL), XDP_PASS);
	s = src_act(e, S4);
	assert_int_equal(s.count[ZT_RL_UDP], 11);
	assert_int_equal(s.nports, 2);
	/* With the stage off, nothing counts. */
	e->cfg.flags &= ~ZT_GCF_ACTIVITY;
	cfg_write(e);
	syn4(&p, S4, D4, 42000, 443);
	assert_int_equal(xdp_run(e, &p, NULL), XDP_PASS);
	assert_int_equal(src_act(e, S4).count[ZT_RL_ALL], 22);
}

/* Count-min among many sources: the source's own count, little or nothing more. */
static void test_counts_many_sources(void **state)
{
	struct env *e = *state;
	struct pg_pkt p;
	char a[32];
	int i;

	fresh_window(e);
	for (i = 0; i < 3000; i++) {
		snprintf(a, sizeof(a), "198.18.%d.%d", 64 + i / 250, 1 + i % 250);
		udp4(&p, a, D4, 40000, 53);
		xdp_run(e, &p, NULL);
	}
	for (i = 0; i < 100; i++) {
		udp4(&p, S4, D4, 40000, 53);
		xdp_run(e, &p, NULL);
	}
	assert_in_range(src_act(e, S4).count[ZT_RL_ALL], 100, 102);
	assert_int_equal(dst_act(e, D4).count[ZT_RL_ALL], 3100);
	/* 3001 distinct sources saturate the destination's 64-bit bitmap. */
	assert_int_equal(dst_act(e, D4).nsrcs, 64);
}

/* Distinct destination ports and hosts by linear counting. */
static void test_distinct(void **state)
{
	struct env *e = *state;
	struct zt_src_cell s;
	struct pg_pkt p;
	char d[32];
	double est;
	int i;

	fresh_window(e);
	for (i = 0; i < 40; i++) {
		syn4(&p, S4, D4, 40000, 1000 + i);
		assert_int_equal(xdp_run(e, &p, NULL), XDP_PASS);
	}
	for (i = 0; i < 20; i++) {
		snprintf(d, sizeof(d), "198.19.1.%d", 1 + i);
		syn4(&p, S4, d, 40000, 22);
		assert_int_equal(xdp_run(e, &p, NULL), XDP_PASS);
	}
	s = src_act(e, S4);
	est = zt_lc_estimate(s.nports, 64);
	print_message("    41 distinct ports: %u bits set, estimate %.1f\n", s.nports, est);
	assert_true(est >= 41 * 0.7 && est <= 41 * 1.3);
	est = zt_lc_estimate(s.nhosts, 64);
	print_message("    21 distinct hosts: %u bits set, estimate %.1f\n", s.nhosts, est);
	assert_true(est >= 21 * 0.7 && est <= 21 * 1.3);
	/*
	 * Probe events: one per first contact, as far as the 64-bit contacts
	 * bitmap tells 61 contacts apart (about 40 distinct bits), each a
	 * different (destination, port).
	 */
	drain(e);
	print_message("    61 contacts: %d probe events\n", e->n_probe);
	assert_in_range(e->n_probe, 30, 61);
	for (i = 0; i < e->n_probe && i < MAXREC; i++)
		for (int j = 0; j < i; j++)
			assert_false(e->probe[i].dport == e->probe[j].dport &&
				     !memcmp(e->probe[i].daddr, e->probe[j].daddr, 16));
}

/* ---- per-source buckets ---- */

static void test_src_limit_and_refill(void **state)
{
	struct env *e = *state;
	struct zt_ratelimit_cfg rl = { .src = { [ZT_RL_SYN] = 200 } };
	struct zt_addr_key sa = A(S4);
	struct zt_rl_state st;
	struct pg_pkt p;
	int i, passed = 0, dropped = 0, t_passed = 0;

	cfg_limits(e, &rl);
	fresh_window(e);
	for (i = 0; i < 600; i++) {
		int v;

		syn4(&p, S4, D4, 1024 + i, 443);
		v = xdp_run(e, &p, NULL);
		passed += v == XDP_PASS;
		dropped += v == XDP_DROP;
	}
	print_message("    600 SYNs at once, limit 200/s: %d passed, %d dropped\n", passed,
		      dropped);
	/* The window's 200, at most 15 more before the check, one more from the new bucket. */
	assert_in_range(passed, 200, 230);
	assert_int_equal(passed + dropped, 600);
	assert_int_equal(xdp_stat(e, ZT_ACT_DROP, ZT_XR_RL_SRC_SYN), dropped);
	assert_int_equal(zt_guard_rl_src(&e->dp, &sa, &st), 0);
	assert_int_equal(st.dropped[ZT_RL_SYN], dropped);
	assert_int_equal(act_stat(e, ZT_AS_LIMITED_SRCS), 1);
	/* Sampled drop events carry the reason. */
	drain(e);
	assert_true(e->n_drop > 0);

	/* Another source is not limited at all. */
	for (i = 0; i < 100; i++) {
		syn4(&p, T4, D4, 1024 + i, 443);
		t_passed += xdp_run(e, &p, NULL) == XDP_PASS;
	}
	assert_int_equal(t_passed, 100);

	/* Refill: 250 ms at 200/s is 50 more. */
	sleep_ms(250);
	passed = 0;
	for (i = 0; i < 200; i++) {
		syn4(&p, S4, D4, 3000 + i, 443);
		passed += xdp_run(e, &p, NULL) == XDP_PASS;
	}
	print_message("    after 250 ms: %d of 200 passed (50 expected)\n", passed);
	assert_in_range(passed, 35, 70);
	/* UDP from the same source has no limit: its own kind, untouched. */
	udp4(&p, S4, D4, 40000, 53);
	assert_int_equal(xdp_run(e, &p, NULL), XDP_PASS);
}

/*
 * An innocent source that shares both sketch cells with a flooding one (a
 * seed is searched that makes them collide) keeps its own bucket: sent
 * slowly, every one of its packets passes while the flooder is cut.
 */
static void test_src_collision_isolated(void **state)
{
	struct env *e = *state;
	struct zt_ratelimit_cfg rl = { .src = { [ZT_RL_SYN] = 100 } };
	__u32 wa[4], wi[4];
	__u8 fam;
	uint64_t seed;
	struct pg_pkt p;
	int i, a_pass = 0, i_pass = 0;
	const char *attacker = "198.18.7.7", *innocent = "198.18.9.9";

	words(attacker, wa, &fam);
	words(innocent, wi, &fam);
	for (seed = 1;; seed += 2) {
		uint64_t ha = zt_sketch_hash(wa, 4, seed), hi = zt_sketch_hash(wi, 4, seed);

		if (zt_src_cell0(ha) == zt_src_cell0(hi) && zt_src_cell1(ha) == zt_src_cell1(hi))
			break;
	}
	e->cfg.seed = seed;
	cfg_limits(e, &rl);
	fresh_window(e);
	/* The attacker at full speed; the innocent at 20 a second, under its limit of 100. */
	for (i = 0; i < 400; i++) {
		syn4(&p, attacker, D4, 1024 + i, 443);
		a_pass += xdp_run(e, &p, NULL) == XDP_PASS;
		if (i % 40 == 39) {
			syn4(&p, innocent, D4, 5000 + i, 443);
			i_pass += xdp_run(e, &p, NULL) == XDP_PASS;
			sleep_ms(50);
		}
	}
	print_message("    seed %#llx: attacker %d/400 passed, innocent %d/10\n",
		      (unsigned long long)seed, a_pass, i_pass);
	/* The window's 100 (checked every 16th: 112), then 100/s for the half second. */
	assert_in_range(a_pass, 100, 180);
	assert_int_equal(i_pass, 10);
	/* The innocent one is read from the same cells: its count-min says the flood's. */
	assert_true(src_act(e, innocent).count[ZT_RL_SYN] >= 400);
}

/* ---- per-destination buckets ---- */

static void test_dst_limit(void **state)
{
	struct env *e = *state;
	struct zt_ratelimit_cfg rl = { .dst = { [ZT_RL_UDP] = 300 } };
	struct pg_pkt p;
	char a[32];
	int i, passed = 0, e_pass = 0;

	cfg_limits(e, &rl);
	fresh_window(e);
	/* 600 sources, one packet each: no source limit can see it. */
	for (i = 0; i < 600; i++) {
		snprintf(a, sizeof(a), "198.18.%d.%d", 80 + i / 250, 1 + i % 250);
		udp4(&p, a, D4, 40000, 53);
		passed += xdp_run(e, &p, NULL) == XDP_PASS;
	}
	print_message("    600 UDP packets to one destination, limit 300/s: %d passed\n", passed);
	/* A full bucket: one second's worth, plus the one that conforms at its edge. */
	assert_in_range(passed, 295, 310);
	assert_int_equal(xdp_stat(e, ZT_ACT_DROP, ZT_XR_RL_DST_UDP), 600 - passed);
	assert_int_equal(dst_act(e, D4).exhausted, 1 << ZT_RL_UDP);
	/* Another destination, another bucket. */
	for (i = 0; i < 100; i++) {
		udp4(&p, S4, E4, 40000, 53);
		e_pass += xdp_run(e, &p, NULL) == XDP_PASS;
	}
	assert_int_equal(e_pass, 100);
	/* SYNs have no limit here. */
	syn4(&p, S4, D4, 40000, 80);
	assert_int_equal(xdp_run(e, &p, NULL), XDP_PASS);
	sleep_ms(200);
	passed = 0;
	for (i = 0; i < 200; i++) {
		udp4(&p, T4, D4, 40000 + i, 53);
		passed += xdp_run(e, &p, NULL) == XDP_PASS;
	}
	print_message("    after 200 ms: %d passed (60 expected)\n", passed);
	assert_in_range(passed, 45, 80);
}

/* A destination that shares one cell with a flooded one keeps its rate through the other. */
static void test_dst_shared_cell(void **state)
{
	struct env *e = *state;
	struct zt_ratelimit_cfg rl = { .dst = { [ZT_RL_ALL] = 200 } };
	__u32 wd[4], we[4];
	__u8 fam;
	uint64_t seed;
	struct pg_pkt p;
	int i, e_pass = 0;

	words(D4, wd, &fam);
	words(E4, we, &fam);
	for (seed = 1;; seed += 2) {
		uint64_t hd = zt_sketch_hash(wd, 4, seed), he = zt_sketch_hash(we, 4, seed);

		if (zt_dst_cell0(hd) == zt_dst_cell0(he) && zt_dst_cell1(hd) != zt_dst_cell1(he))
			break;
	}
	e->cfg.seed = seed;
	cfg_limits(e, &rl);
	fresh_window(e);
	for (i = 0; i < 1000; i++) {
		udp4(&p, S4, D4, 40000, 53);
		xdp_run(e, &p, NULL);
	}
	assert_in_range(xdp_stat(e, ZT_ACT_DROP, ZT_XR_RL_DST_ALL), 780, 810);
	for (i = 0; i < 150; i++) {
		udp4(&p, T4, E4, 40000, 53);
		e_pass += xdp_run(e, &p, NULL) == XDP_PASS;
	}
	assert_int_equal(e_pass, 150);
	/*
	 * E took over the CPU's entry at the shared row-0 cell; D's counts
	 * there went to D's cells first: both counts stay exact.
	 */
	assert_int_equal(dst_act(e, D4).count[ZT_RL_ALL], 1000);
	assert_int_equal(dst_act(e, E4).count[ZT_RL_ALL], 150);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs the calling thread on cpu from now on. */
static void on_cpu(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	assert_int_equal(sched_setaffinity(0, sizeof(set), &set), 0);
}

/* The shared (not per-CPU) row-0 cell of a destination, as the map holds it. */
static struct zt_dst_cell dst_cell0_raw(struct env *e, const char *s)
{
	struct zt_dst_cell c;
	__u32 w[4], idx;
	__u8 fam;

	words(s, w, &fam);
	idx = zt_dst_cell0(zt_sketch_hash(w, fam, e->cfg.seed));
	assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(e->x->maps.dst_sketch), &idx, &c), 0);
	return c;
}

/*
 * Several CPUs send to one destination: each counts in its own copy of the
 * cells (dst_local) and adds it to the shared cells every 16 packets,
 * readers add the copies, and a bucket's tokens taken by one CPU are not
 * spent twice.
 */
static void test_dst_several_cpus(void **state)
{
	struct env *e = *state;
	struct zt_ratelimit_cfg rl = { .dst = { [ZT_RL_UDP] = 300 } };
	int cpu[2], n = 0, cur = sched_getcpu(), i, passed = 0;
	__u32 bytes = 0;
	struct zt_dst_cell d;
	struct pg_pkt p;
	double t0, el;
	uint64_t w0;
	char a[32];

	for (int c = 0; c < CPU_SETSIZE && n < 2; c++)
		if (CPU_ISSET(c, &all_cpus))
			cpu[n++] = c;
	if (n < 2) {
		print_message("    one CPU only: skipped\n");
		skip();
	}
	cfg_limits(e, &rl);
	fresh_window(e);
	on_cpu(cpu[0]);
	for (i = 0; i < 10; i++) {
		udp4(&p, S4, D4, 40000 + i, 53);
		assert_int_equal(xdp_run(e, &p, NULL), XDP_PASS);
		bytes += (__u32)p.len - 14;
	}
	on_cpu(cpu[1]);
	for (i = 0; i < 7; i++) {
		udp4(&p, S4, D4, 40000 + i, 53);
		assert_int_equal(xdp_run(e, &p, NULL), XDP_PASS);
		bytes += (__u32)p.len - 14;
	}
	d = dst_act(e, D4);
	assert_int_equal(d.count[ZT_RL_ALL], 17);
	assert_int_equal(d.count[ZT_RL_UDP], 17);
	assert_int_equal(d.bytes, bytes);
	/* Fewer than 16 on each CPU: nothing in the shared cell yet. */
	assert_int_equal(dst_cell0_raw(e, D4).count[ZT_RL_ALL], 0);
	for (i = 0; i < 9; i++) {
		udp4(&p, S4, D4, 40000 + i, 53);
		assert_int_equal(xdp_run(e, &p, NULL), XDP_PASS);
	}
	/* The 16th on cpu[1] added its copy. */
	assert_int_equal(dst_cell0_raw(e, D4).count[ZT_RL_ALL], 16);
	assert_int_equal(dst_act(e, D4).count[ZT_RL_ALL], 26);
	/* 600 sources to another destination, the CPUs taking turns. */
	fresh_window(e);
	w0 = window_now(e);
	t0 = now_s();
	for (i = 0; i < 600; i++) {
		on_cpu(cpu[i % 2]);
		snprintf(a, sizeof(a), "198.18.%d.%d", 80 + i / 250, 1 + i % 250);
		udp4(&p, a, E4, 40000, 53);
		passed += xdp_run(e, &p, NULL) == XDP_PASS;
	}
	el = now_s() - t0;
	on_cpu(cur < 0 ? cpu[0] : cur);
	print_message("    600 UDP packets from two CPUs in %.0f ms, limit 300/s: %d passed\n",
		      el * 1e3, passed);
	/*
	 * As on one CPU (test_dst_limit), plus what a CPU took and did not
	 * spend, plus the refill while the CPUs took turns.
	 */
	assert_in_range(passed, 295,
			310 + 2 * (e->cfg.dst_lease[ZT_RL_UDP] - 1) + (int)(300 * el + 1));
	assert_int_equal(xdp_stat(e, ZT_ACT_DROP, ZT_XR_RL_DST_UDP), 600 - passed);
	/* Counts are per window: a loaded machine may have moved the loop into the next. */
	if (window_now(e) == w0)
		assert_int_equal(dst_act(e, E4).count[ZT_RL_ALL], 600);
	else
		assert_in_range(dst_act(e, E4).count[ZT_RL_ALL], 1, 600);
}

/* ---- signals ---- */

static void test_signals(void **state)
{
	struct env *e = *state;
	struct pg_pkt p;
	__u8 s_addr[16] = { 0 }, d_addr[16] = { 0 };
	char a[32];
	int i, src_ev = 0, dst_ev = 0;

	inet_pton(AF_INET, S4, s_addr);
	inet_pton(AF_INET, D4, d_addr);
	e->cfg.sig_src.syn = 20;
	e->cfg.sig_src.distinct = 16;
	e->cfg.sig_dst.distinct = 32;
	cfg_write(e);
	fresh_window(e);
	forget(e);
	/* 30 SYNs to 30 ports: the SYN and the distinct-ports signals, once each. */
	for (i = 0; i < 30; i++) {
		syn4(&p, S4, D4, 40000, 2000 + i);
		xdp_run(e, &p, NULL);
	}
	drain(e);
	for (i = 0; i < e->n_act; i++) {
		const struct zt_ev_activity *v = &e->act[i];

		if (v->hdr.type != ZT_EV_SRC_ACTIVITY)
			continue;
		src_ev++;
		assert_int_equal(v->family, 4);
		assert_memory_equal(v->addr, s_addr, 16);
		assert_memory_equal(v->peer, d_addr, 16);
		assert_int_equal(v->proto, IPPROTO_TCP);
		if (v->signals & ZT_SIG_SYN)
			assert_int_equal(v->syn, 20);
		if (v->signals & ZT_SIG_DISTINCT)
			assert_true(v->distinct >= 16);
		assert_int_equal(v->signals & ~(ZT_SIG_SYN | ZT_SIG_DISTINCT), 0);
	}
	/* Each signal once (in one event or two, as they cross). */
	assert_in_range(src_ev, 1, 2);
	{
		int syn_ev = 0, dist_ev = 0;

		for (i = 0; i < e->n_act; i++) {
			syn_ev += !!(e->act[i].signals & ZT_SIG_SYN);
			dist_ev += !!(e->act[i].signals & ZT_SIG_DISTINCT);
		}
		assert_int_equal(syn_ev, 1);
		assert_int_equal(dist_ev, 1);
	}
	/* The destination's distinct sources: 40 sources, one event once 32 bits are set. */
	forget(e);
	for (i = 0; i < 60; i++) {
		snprintf(a, sizeof(a), "198.18.90.%d", 1 + i);
		udp4(&p, a, D4, 40000, 53);
		xdp_run(e, &p, NULL);
	}
	drain(e);
	for (i = 0; i < e->n_act; i++)
		if (e->act[i].hdr.type == ZT_EV_DST_ACTIVITY) {
			dst_ev++;
			assert_memory_equal(e->act[i].addr, d_addr, 16);
			assert_true(e->act[i].signals & ZT_SIG_DISTINCT);
			assert_true(e->act[i].distinct >= 32);
		}
	assert_int_equal(dst_ev, 1);
	assert_int_equal(e->n_bad, 0);
}

/*
 * The flood detector decides a kernel count on rate x window at least, and
 * a signal goes out once a window: the flood signals are raised to what a
 * source at the detector's rate sends in its window. The built-in levels
 * are that already for the built-in rates and window; a detection.flood.syn
 * of 5000 signals at 500 half-open (at 200 it came too early to decide, and
 * never again in its window), a window of 200 ms at twice the levels; a
 * level above what the rate asks stays (ICMP's 200).
 */
static void test_signals_cover_rates(void **state)
{
	struct zt_signal_cfg s, d;
	uint32_t rate[ZT_RL_KINDS] = {
		[ZT_RL_SYN] = 2000, [ZT_RL_UDP] = 20000, [ZT_RL_ICMP] = 500
	};

	(void)state;
	zt_signal_cfg_defaults(&d);
	s = d;
	zt_signal_cfg_cover_rates(&s, rate, 10, 100000000ULL);
	assert_memory_equal(&s, &d, sizeof(s));
	rate[ZT_RL_SYN] = 5000;
	zt_signal_cfg_cover_rates(&s, rate, 10, 100000000ULL);
	assert_int_equal(s.src.halfopen, 500);
	assert_int_equal(s.dst.halfopen, 5000);
	assert_int_equal(s.src.syn, d.src.syn); /* the plain SYN count decides nothing */
	rate[ZT_RL_SYN] = 2000;
	s = d;
	zt_signal_cfg_cover_rates(&s, rate, 10, 200000000ULL);
	assert_int_equal(s.src.halfopen, 400);
	assert_int_equal(s.src.udp, 4000);
	assert_int_equal(s.dst.udp, d.dst.udp); /* 50000 over 40000 */
	assert_int_equal(s.src.icmp, d.src.icmp); /* 200 over 100 */
	assert_int_equal(s.src.pkts, d.src.pkts); /* no rate */
}

/*
 * A configured flood rate lowers the kernel's signal to what a source at
 * that rate sends in the detector's window (a 5k/s UDP limit: 500
 * datagrams, not the built-in 2000), so the detector hears of it in time;
 * a rate above the built-in levels changes nothing.
 */
static void test_signals_follow_rates(void **state)
{
	struct env *e = *state;
	struct zt_signal_cfg s, d;
	uint32_t rate[ZT_RL_KINDS] = { [ZT_RL_UDP] = 5000, [ZT_RL_ICMP] = 100 };
	struct pg_pkt p;
	int i, udp_ev = 0;

	zt_signal_cfg_defaults(&d);
	s = d;
	zt_signal_cfg_follow_rates(&s, rate, 10, 100000000ULL);
	assert_int_equal(s.src.udp, 500);
	assert_int_equal(s.dst.udp, 5000);
	assert_int_equal(s.src.icmp, 10);
	assert_int_equal(s.dst.icmp, 100);
	assert_int_equal(s.src.syn, d.src.syn); /* not configured: left alone */
	assert_int_equal(s.src.halfopen, d.src.halfopen);
	assert_int_equal(s.src.pkts, d.src.pkts);
	rate[ZT_RL_UDP] = 1000000; /* above the built-in level: unchanged */
	rate[ZT_RL_SYN] = 5; /* half a packet a window: at least one */
	s = d;
	zt_signal_cfg_follow_rates(&s, rate, 10, 100000000ULL);
	assert_int_equal(s.src.udp, d.src.udp);
	assert_int_equal(s.src.syn, 1);
	assert_int_equal(s.dst.syn, 10);

	/* In the kernel: 600 datagrams signal at 500 with the 5k/s rate's levels. */
	rate[ZT_RL_UDP] = 5000;
	rate[ZT_RL_SYN] = 0;
	s = d;
	zt_signal_cfg_follow_rates(&s, rate, 10, 100000000ULL);
	zt_guard_cfg_set_signals(&e->cfg, &s);
	cfg_write(e);
	fresh_window(e);
	forget(e);
	for (i = 0; i < 600; i++) {
		udp4(&p, S4, D4, 40000, 9999);
		xdp_run(e, &p, NULL);
	}
	drain(e);
	for (i = 0; i < e->n_act; i++)
		if (e->act[i].hdr.type == ZT_EV_SRC_ACTIVITY && (e->act[i].signals & ZT_SIG_UDP)) {
			udp_ev++;
			assert_in_range(e->act[i].udp, 500, 500 + ZT_CHECK_EVERY);
		}
	assert_int_equal(udp_ev, 1);
	/* ... and not at all with the built-in levels (2000 a window). */
	zt_guard_cfg_set_signals(&e->cfg, &d);
	cfg_write(e);
	fresh_window(e);
	forget(e);
	for (i = 0; i < 600; i++) {
		udp4(&p, S4, D4, 40000, 9999);
		xdp_run(e, &p, NULL);
	}
	drain(e);
	for (i = 0; i < e->n_act; i++)
		assert_false(e->act[i].hdr.type == ZT_EV_SRC_ACTIVITY &&
			     (e->act[i].signals & ZT_SIG_UDP));
	assert_int_equal(e->n_bad, 0);
}

/*
 * A source that starts late in a window: its signal's elapsed time is
 * counted from its first packet, not from the window's start (the flood
 * detector's rate is count / elapsed, and a flood must not be diluted by
 * the quiet part of the window before it).
 */
static void test_signal_elapsed_from_first_packet(void **state)
{
	struct env *e = *state;
	uint64_t j, ns, len;
	struct pg_pkt p;
	int i, seen = 0;

	e->cfg.sig_src.syn = 20;
	cfg_write(e);
	len = 1ULL << e->cfg.win_shift;
	/* Into the window's second half (well after its start). */
	for (i = 0; i < 400; i++) {
		assert_int_equal(zt_datapath_clock(&e->dp, &j, &ns), 0);
		if ((j & (len - 1)) >= len / 2 && (j & (len - 1)) < len * 3 / 4)
			break;
		sleep_ms(5);
	}
	assert_true((j & (len - 1)) >= len / 2);
	forget(e);
	for (i = 0; i < 30; i++) {
		syn4(&p, S4, D4, 40000, 2000 + i);
		xdp_run(e, &p, NULL);
	}
	drain(e);
	for (i = 0; i < e->n_act; i++) {
		const struct zt_ev_activity *v = &e->act[i];

		if (v->hdr.type != ZT_EV_SRC_ACTIVITY || !(v->signals & ZT_SIG_SYN))
			continue;
		seen++;
		/* 30 packets take a jiffy or two; the window had run len / 2 before them. */
		assert_in_range(v->elapsed, 0, len / 8);
	}
	assert_int_equal(seen, 1);
	assert_int_equal(e->n_bad, 0);
}

/* ---- probes and their outcomes ---- */

/*
 * Moves e's sketch seed to one under which the n probes (destination, port
 * and protocol each) have probe bits of their own.
 */
static void seed_distinct_bits(struct env *e, const char *const *dsts, const int *ports,
			       const int *protos, int n)
{
	uint64_t seed;

	for (seed = e->cfg.seed;; seed += 2) {
		uint64_t seen = 0, b;
		int i, ok = 1;

		for (i = 0; i < n && ok; i++) {
			__u32 wd[4];
			__u8 fam;

			words(dsts[i], wd, &fam);
			b = 1ULL << zt_probe_bit(zt_sketch_hash(wd, fam, seed), (__u16)ports[i],
						 (__u8)protos[i]);
			ok = !(seen & b);
			seen |= b;
		}
		if (ok)
			break;
	}
	e->cfg.seed = seed;
	cfg_write(e);
}

static void test_probes_and_results(void **state)
{
	struct env *e = *state;
	struct pg_pkt p;
	__u8 s_addr[16] = { 0 }, d_addr[16] = { 0 };

	inet_pton(AF_INET, S4, s_addr);
	inet_pton(AF_INET, D4, d_addr);
	/*
	 * A seed under which the four probes have pending bits of their own:
	 * two pending probes of one source on one bit get one outcome (see
	 * struct zt_src_cell), which is not what this test is about.
	 */
	{
		static const char *const dsts[] = { D4, D4, D4, D4 };
		static const int ports[] = { 80, 81, 161, 0 };
		static const int protos[] = { IPPROTO_TCP, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP };

		seed_distinct_bits(e, dsts, ports, protos, 4);
	}
	fresh_window(e);
	forget(e);
	syn4(&p, S4, D4, 40000, 80);
	assert_int_equal(xdp_run(e, &p, NULL), XDP_PASS);
	syn4(&p, S4, D4, 40001, 80); /* the same service again: no new probe */
	xdp_run(e, &p, NULL);
	syn4(&p, S4, D4, 40002, 81);
	xdp_run(e, &p, NULL);
	udp4(&p, S4, D4, 40003, 161);
	xdp_run(e, &p, NULL);
	mk(&p, 4, IPPROTO_ICMP, S4, D4, 8, 0, 0, 0, 16); /* echo request */
	xdp_run(e, &p, NULL);
	udp4(&p, S4, D4, 53, 40004); /* a server's answer: no probe */
	xdp_run(e, &p, NULL);
	drain(e);
	assert_int_equal(e->n_probe, 4);
	assert_int_equal(e->probe[0].proto, IPPROTO_TCP);
	assert_int_equal(e->probe[0].dport, 80);
	assert_int_equal(e->probe[0].sport, 40000);
	assert_int_equal(e->probe[0].action, ZT_ACT_PASS);
	assert_memory_equal(e->probe[0].saddr, s_addr, 16);
	assert_memory_equal(e->probe[0].daddr, d_addr, 16);
	assert_int_equal(e->probe[1].dport, 81);
	assert_int_equal(e->probe[2].proto, IPPROTO_UDP);
	assert_int_equal(e->probe[3].proto, IPPROTO_ICMP);

	/* The node's answers leave through tc_uplink. */
	mk(&p, 4, IPPROTO_TCP, D4, S4, 80, 40000, TCP_SYN | TCP_ACK, 5000, 0);
	uplink_run(e, &p);
	uplink_run(e, &p); /* a retransmission: the probe has its outcome */
	mk(&p, 4, IPPROTO_TCP, D4, S4, 81, 40002, TCP_RST | TCP_ACK, 0, 0);
	uplink_run(e, &p);
	mk(&p, 4, IPPROTO_ICMP, D4, S4, 0, 0, 0, 0, 16); /* echo reply */
	uplink_run(e, &p);
	/* Port unreachable, quoting the UDP probe (S4:40003 -> D4:161). */
	{
		struct pg_pkt q;
		struct pg_spec g = { .family = 4,
				     .src = D4,
				     .dst = S4,
				     .proto = IPPROTO_ICMP,
				     .sport = 3,
				     .dport = 3,
				     .payload = 28 };

		udp4(&q, S4, D4, 40003, 161);
		assert_int_equal(pg_build(&g, &p), 0);
		memcpy(p.buf + p.off[PG_PAYLOAD], q.buf + q.off[PG_IP], 28);
		uplink_run(e, &p);
	}
	/* An answer to nothing probed: no outcome. */
	mk(&p, 4, IPPROTO_TCP, E4, S4, 80, 40000, TCP_SYN | TCP_ACK, 5000, 0);
	uplink_run(e, &p);
	drain(e);
	assert_int_equal(e->n_res, 4);
	assert_int_equal(e->res[0].result, ZT_PROBE_OPEN);
	assert_int_equal(e->res[0].proto, IPPROTO_TCP);
	assert_int_equal(e->res[0].port, 80);
	assert_int_equal(e->res[0].prober_port, 40000);
	assert_memory_equal(e->res[0].prober, s_addr, 16);
	assert_memory_equal(e->res[0].target, d_addr, 16);
	assert_int_equal(e->res[1].result, ZT_PROBE_CLOSED);
	assert_int_equal(e->res[1].port, 81);
	assert_int_equal(e->res[2].result, ZT_PROBE_OPEN);
	assert_int_equal(e->res[2].proto, IPPROTO_ICMP);
	assert_int_equal(e->res[3].result, ZT_PROBE_UNREACH);
	assert_int_equal(e->res[3].proto, IPPROTO_UDP);
	assert_int_equal(e->res[3].port, 161);
	assert_int_equal(e->res[3].icmp_type, 3);
	assert_int_equal(e->res[3].icmp_code, 3);
	assert_int_equal(act_stat(e, ZT_AS_PROBES), 4);
	assert_int_equal(act_stat(e, ZT_AS_PROBE_RESULTS), 4);
	/* Probes off: neither kind of event. */
	forget(e);
	e->cfg.flags &= ~ZT_GCF_PROBES;
	cfg_write(e);
	syn4(&p, S4, D4, 40000, 90);
	xdp_run(e, &p, NULL);
	mk(&p, 4, IPPROTO_TCP, D4, S4, 90, 40000, TCP_SYN | TCP_ACK, 5000, 0);
	uplink_run(e, &p);
	drain(e);
	assert_int_equal(e->n_probe + e->n_res, 0);
}

/* A closed port's reset (RST|ACK) or an open one's SYN-ACK for S4's probe of D4:port. */
static void answer(struct env *e, int port, int open)
{
	struct pg_pkt p;

	mk(&p, 4, IPPROTO_TCP, D4, S4, port, 41000 + port % 1000,
	   open ? TCP_SYN | TCP_ACK : TCP_RST | TCP_ACK, 5000, 0);
	uplink_run(e, &p);
}

static int probe(struct env *e, int port)
{
	struct pg_pkt p;

	return xdp_run(e, syn4(&p, S4, D4, 41000 + port % 1000, port), NULL);
}

/*
 * The scan brake (include/ztagent.h, "Scan brake"): once a source's first
 * contacts failed brake times more than they opened this window, its
 * further first contacts are dropped, nothing else of it; an exempt
 * source, or the brake off, passes.
 */
static void test_scan_brake(void **state)
{
	static const char *const dsts[] = { D4, D4, D4, D4, D4, D4, D4, D4, D4 };
	static const int ports[] = { 2001, 2002, 2003, 2004, 2005, 2006, 2007, 2008, 2009 };
	static const int protos[] = { 6, 6, 6, 6, 6, 6, 6, 6, 6 };
	struct zt_cidr net = { .family = AF_INET, .prefixlen = 24 };
	struct zt_scan_exempt_key k = { .prefixlen = 64, .family = 4 };
	struct env *e = *state;
	struct pg_pkt p;
	__u32 one = 1;

	seed_distinct_bits(e, dsts, ports, protos, 9);
	e->cfg.flags |= ZT_GCF_SCAN_BRAKE;
	e->cfg.scan_brake = 3;
	cfg_write(e);
	fresh_window(e);
	forget(e);
	/* One closed, one open: nothing beyond the opens. */
	assert_int_equal(probe(e, 2001), XDP_PASS);
	assert_int_equal(probe(e, 2002), XDP_PASS);
	answer(e, 2001, 0);
	answer(e, 2002, 1);
	assert_int_equal(probe(e, 2003), XDP_PASS);
	assert_int_equal(probe(e, 2004), XDP_PASS);
	answer(e, 2003, 0);
	answer(e, 2004, 0);
	/* 3 failed, 1 open: 2 beyond, under the brake's 3. */
	assert_int_equal(probe(e, 2005), XDP_PASS);
	answer(e, 2005, 0);
	answer(e, 2005, 0); /* a retransmitted reset: the probe had its outcome */
	/* 4 failed, 1 open: the next first contact is dropped, and reported as a probe. */
	forget(e);
	assert_int_equal(probe(e, 2006), XDP_DROP);
	assert_int_equal(xdp_stat(e, ZT_ACT_DROP, ZT_XR_SCAN_BRAKE), 1);
	drain(e);
	assert_int_equal(e->n_probe, 1);
	assert_int_equal(e->probe[0].action, ZT_ACT_DROP);
	assert_int_equal(e->probe[0].reason, ZT_XR_SCAN_BRAKE);
	assert_int_equal(e->probe[0].dport, 2006);
	/* Its retransmission: no contact was made, so a first contact, braked again. */
	assert_int_equal(probe(e, 2006), XDP_DROP);
	assert_int_equal(xdp_stat(e, ZT_ACT_DROP, ZT_XR_SCAN_BRAKE), 2);
	/* Not a first contact: a SYN again to a port it tried, a segment of a connection. */
	assert_int_equal(probe(e, 2002), XDP_PASS);
	mk(&p, 4, IPPROTO_TCP, S4, D4, 41002, 2002, TCP_ACK, 1001, 100);
	assert_int_equal(xdp_run(e, &p, NULL), XDP_PASS);
	/* Another source: its own cells. */
	assert_int_equal(xdp_run(e, syn4(&p, T4, D4, 41006, 2006), NULL), XDP_PASS);
	/* Exempt (the trie the daemon keeps): S4 itself, then its /24 through the daemon's setter. */
	inet_pton(AF_INET, S4, k.addr);
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(e->x->maps.scan_exempt), &k, &one, 0), 0);
	assert_int_equal(probe(e, 2007), XDP_PASS);
	inet_pton(AF_INET, "198.18.5.0", net.addr);
	assert_int_equal(zt_datapath_set_scan_exempt(&e->dp, &net, 1), 0);
	/* The /32 is gone: the one key left is the /24 (a lookup would match either). */
	{
		struct zt_scan_exempt_key a, b;
		int fd = bpf_map__fd(e->x->maps.scan_exempt);

		assert_int_equal(bpf_map_get_next_key(fd, NULL, &a), 0);
		assert_int_equal(a.prefixlen, 32 + 24);
		assert_int_not_equal(bpf_map_get_next_key(fd, &a, &b), 0);
	}
	assert_int_equal(probe(e, 2008), XDP_PASS);
	assert_int_equal(zt_datapath_set_scan_exempt(&e->dp, NULL, 0), 0);
	assert_int_equal(probe(e, 2009), XDP_DROP);
	/* The brake off: first contacts pass whatever the cells say. */
	e->cfg.flags &= ~ZT_GCF_SCAN_BRAKE;
	cfg_write(e);
	assert_int_equal(xdp_run(e, syn4(&p, S4, D4, 41010, 2010), NULL), XDP_PASS);
	assert_int_equal(xdp_stat(e, ZT_ACT_DROP, ZT_XR_SCAN_BRAKE), 3);
}

/*
 * A stealth scan's probes: FIN, NULL, Xmas and SYN+FIN segments are first
 * contacts like SYNs (no connection sends a segment without ACK after its
 * SYN), and a closed port's reset is their outcome; so is an ICMP
 * timestamp request (a ping sweep's other probe), answered by its reply.
 * Segments of a connection (ACK, FIN+ACK, data, a bare RST) are none.
 */
static void test_stealth_probes(void **state)
{
	static const char *const dsts[] = { D4, D4, D4, D4, E4 };
	static const int ports[] = { 1001, 1002, 1003, 1004, 0 };
	static const int protos[] = { IPPROTO_TCP, IPPROTO_TCP, IPPROTO_TCP, IPPROTO_TCP,
				      IPPROTO_ICMP };
	static const int flags[] = { TCP_FIN, 0, TCP_FIN | TCP_PSH | TCP_URG, TCP_SYN | TCP_FIN };
	struct env *e = *state;
	struct pg_pkt p;
	int i;

	seed_distinct_bits(e, dsts, ports, protos, 5);
	fresh_window(e);
	forget(e);
	for (i = 0; i < 4; i++) {
		mk(&p, 4, IPPROTO_TCP, S4, D4, 50000 + i, ports[i], flags[i], 1000, 0);
		assert_int_equal(xdp_run(e, &p, NULL), XDP_PASS);
		xdp_run(e, &p, NULL); /* the same probe again: no new first contact */
	}
	mk(&p, 4, IPPROTO_ICMP, S4, E4, 13, 0, 0, 0, 20); /* timestamp request */
	xdp_run(e, &p, NULL);
	/* Segments of connections, to ports of their own. */
	mk(&p, 4, IPPROTO_TCP, S4, D4, 50010, 2001, TCP_ACK, 1000, 0);
	xdp_run(e, &p, NULL);
	mk(&p, 4, IPPROTO_TCP, S4, D4, 50011, 2002, TCP_FIN | TCP_ACK, 1000, 0);
	xdp_run(e, &p, NULL);
	mk(&p, 4, IPPROTO_TCP, S4, D4, 50012, 2003, TCP_PSH | TCP_ACK, 1000, 100);
	xdp_run(e, &p, NULL);
	mk(&p, 4, IPPROTO_TCP, S4, D4, 50013, 2004, TCP_RST, 1000, 0);
	xdp_run(e, &p, NULL);
	drain(e);
	assert_int_equal(e->n_probe, 5);
	for (i = 0; i < 4 && i < e->n_probe; i++) {
		assert_int_equal(e->probe[i].proto, IPPROTO_TCP);
		assert_int_equal(e->probe[i].dport, ports[i]);
		assert_int_equal(e->probe[i].tcp_flags, flags[i]);
		assert_int_equal(e->probe[i].action, ZT_ACT_PASS);
	}
	assert_int_equal(e->probe[4].proto, IPPROTO_ICMP);
	assert_int_equal(e->probe[4].sport, 13);
	/* The closed port's reset answers the FIN probe, the timestamp reply its request. */
	mk(&p, 4, IPPROTO_TCP, D4, S4, ports[0], 50000, TCP_RST | TCP_ACK, 0, 0);
	uplink_run(e, &p);
	mk(&p, 4, IPPROTO_ICMP, E4, S4, 14, 0, 0, 0, 20);
	uplink_run(e, &p);
	drain(e);
	assert_int_equal(e->n_res, 2);
	assert_int_equal(e->res[0].result, ZT_PROBE_CLOSED);
	assert_int_equal(e->res[0].port, ports[0]);
	assert_int_equal(e->res[0].prober_port, 50000);
	assert_int_equal(e->res[1].result, ZT_PROBE_OPEN);
	assert_int_equal(e->res[1].proto, IPPROTO_ICMP);
}

/* An ICMP(v6) error from "from" to "to" quoting q's IP header and 8 bytes after it. */
static struct pg_pkt *icmp_quoting(struct pg_pkt *p, int family, const char *from, const char *to,
				   int type, int code, const struct pg_pkt *q)
{
	size_t n = (family == 4 ? 20 : 40) + 8;
	struct pg_spec g = { .family = (uint8_t)family,
			     .src = from,
			     .dst = to,
			     .proto = family == 4 ? IPPROTO_ICMP : IPPROTO_ICMPV6,
			     .sport = (uint16_t)type,
			     .dport = (uint16_t)code,
			     .payload = (uint16_t)n };

	assert_int_equal(pg_build(&g, p), 0);
	memset(p->buf + p->off[PG_L4] + 4, 0, 4);
	memcpy(p->buf + p->off[PG_PAYLOAD], q->buf + q->off[PG_IP], n);
	return p;
}

/*
 * Strays: answers to no probe that by themselves say a contact failed. An
 * RST without ACK answers a segment with ACK that no connection owned (an
 * ACK, window or Maimon scan's probe, which the guard does not take for a
 * first contact); a protocol unreachable (ICMPv6: unrecognized next
 * header, pointing at the quoted header's own field) an IP protocol scan's.
 * An RST with ACK (the answer to a segment without ACK: every such probe is
 * a first contact), other ICMP errors, a pointer elsewhere: no stray. An
 * answer to a pending probe is its outcome, never a stray.
 */
static void test_strays(void **state)
{
	struct env *e = *state;
	struct pg_pkt p, q;
	__u8 s_addr[16] = { 0 }, d_addr[16] = { 0 }, s6[16], d6[16];
	int i;

	inet_pton(AF_INET, S4, s_addr);
	inet_pton(AF_INET, D4, d_addr);
	inet_pton(AF_INET6, S6, s6);
	inet_pton(AF_INET6, D6, d6);
	fresh_window(e);
	forget(e);
	/* The node's answers to an ACK scan's probes: closed (80) or open (45000) alike. */
	mk(&p, 4, IPPROTO_TCP, D4, S4, 80, 50000, TCP_RST, 7777, 0);
	uplink_run(e, &p);
	mk(&p, 4, IPPROTO_TCP, D4, S4, 45000, 50001, TCP_RST, 7777, 0);
	uplink_run(e, &p);
	/* An RST with ACK that answers no probe: nothing. */
	mk(&p, 4, IPPROTO_TCP, D4, S4, 81, 50002, TCP_RST | TCP_ACK, 0, 0);
	uplink_run(e, &p);
	/* Protocol unreachable, quoting the probe S4 -> D4, protocol 47. */
	udp4(&q, S4, D4, 0, 0);
	q.buf[q.off[PG_IP] + 9] = 47;
	icmp_quoting(&p, 4, D4, S4, 3, 2, &q);
	uplink_run(e, &p);
	/* Host unreachable quoting the same: no stray, no probe of a protocol we know. */
	icmp_quoting(&p, 4, D4, S4, 3, 1, &q);
	uplink_run(e, &p);
	/* ICMPv6 unrecognized next header 132, pointing at the quoted header's field. */
	{
		struct pg_spec g = {
			.family = 6, .src = S6, .dst = D6, .proto = IPPROTO_UDP, .payload = 8
		};

		assert_int_equal(pg_build(&g, &q), 0);
	}
	q.buf[q.off[PG_IP] + 6] = 132;
	icmp_quoting(&p, 6, D6, S6, 4, 1, &q);
	p.buf[p.off[PG_L4] + 7] = 6;
	uplink_run(e, &p);
	/* The same pointing into an extension header: not this stray. */
	p.buf[p.off[PG_L4] + 7] = 40;
	uplink_run(e, &p);
	drain(e);
	assert_int_equal(e->n_res, 4);
	assert_int_equal(e->res[0].result, ZT_PROBE_STRAY_RST);
	assert_int_equal(e->res[0].proto, IPPROTO_TCP);
	assert_int_equal(e->res[0].port, 80);
	assert_int_equal(e->res[0].prober_port, 50000);
	assert_memory_equal(e->res[0].prober, s_addr, 16);
	assert_memory_equal(e->res[0].target, d_addr, 16);
	assert_int_equal(e->res[1].result, ZT_PROBE_STRAY_RST);
	assert_int_equal(e->res[1].port, 45000);
	assert_int_equal(e->res[2].result, ZT_PROBE_STRAY_PROTO);
	assert_int_equal(e->res[2].proto, 47);
	assert_int_equal(e->res[2].port, 0);
	assert_int_equal(e->res[2].icmp_type, 3);
	assert_int_equal(e->res[2].icmp_code, 2);
	assert_memory_equal(e->res[2].prober, s_addr, 16);
	assert_memory_equal(e->res[2].target, d_addr, 16);
	assert_int_equal(e->res[3].result, ZT_PROBE_STRAY_PROTO);
	assert_int_equal(e->res[3].family, 6);
	assert_int_equal(e->res[3].proto, 132);
	assert_memory_equal(e->res[3].prober, s6, 16);
	assert_memory_equal(e->res[3].target, d6, 16);
	/* A pending probe's reset is its outcome, not a stray. */
	forget(e);
	syn4(&p, S4, D4, 40000, 90);
	xdp_run(e, &p, NULL);
	mk(&p, 4, IPPROTO_TCP, D4, S4, 90, 40000, TCP_RST, 0, 0);
	uplink_run(e, &p);
	drain(e);
	assert_int_equal(e->n_probe, 1);
	assert_int_equal(e->n_res, 1);
	assert_int_equal(e->res[0].result, ZT_PROBE_CLOSED);
	assert_int_equal(e->res[0].port, 90);
	/* Strays have a rate of their own: a flood of them leaves a probe its answer. */
	forget(e);
	e->cfg.probe_rate = 3;
	cfg_write(e);
	for (i = 0; i < 50; i++) {
		mk(&p, 4, IPPROTO_TCP, D4, S4, 100 + i, 50000, TCP_RST, 7777, 0);
		uplink_run(e, &p);
	}
	syn4(&p, S4, D4, 40001, 92);
	xdp_run(e, &p, NULL);
	mk(&p, 4, IPPROTO_TCP, D4, S4, 92, 40001, TCP_RST | TCP_ACK, 0, 0);
	uplink_run(e, &p);
	drain(e);
	assert_int_equal(e->n_probe, 1);
	assert_in_range(e->n_res, 2, 5);
	for (i = 0; i + 1 < e->n_res; i++)
		assert_int_equal(e->res[i].result, ZT_PROBE_STRAY_RST);
	assert_int_equal(e->res[e->n_res - 1].result, ZT_PROBE_CLOSED);
	assert_int_equal(e->res[e->n_res - 1].port, 92);
	/* Probes off: no strays either. */
	forget(e);
	e->cfg.flags &= ~ZT_GCF_PROBES;
	cfg_write(e);
	mk(&p, 4, IPPROTO_TCP, D4, S4, 80, 50000, TCP_RST, 7777, 0);
	uplink_run(e, &p);
	drain(e);
	assert_int_equal(e->n_res, 0);
}

/* The ZT_SIG_RESETS events among e's records, checked for the source src and its target dst. */
static int reset_events(struct env *e, const char *src, const char *dst, int family,
			struct zt_ev_activity *last)
{
	__u8 s_addr[16] = { 0 }, d_addr[16] = { 0 };
	int i, n = 0;

	inet_pton(family == 6 ? AF_INET6 : AF_INET, src, s_addr);
	inet_pton(family == 6 ? AF_INET6 : AF_INET, dst, d_addr);
	for (i = 0; i < e->n_act && i < MAXREC; i++) {
		const struct zt_ev_activity *v = &e->act[i];

		if (!(v->signals & ZT_SIG_RESETS))
			continue;
		assert_int_equal(v->hdr.type, ZT_EV_SRC_ACTIVITY);
		assert_int_equal(v->signals, ZT_SIG_RESETS);
		assert_int_equal(v->family, family);
		assert_int_equal(v->proto, IPPROTO_TCP);
		assert_memory_equal(v->addr, s_addr, 16);
		assert_memory_equal(v->peer, d_addr, 16);
		*last = *v;
		n++;
	}
	return n;
}

/*
 * An ACK flood against the node: every segment belongs to no connection,
 * and the node answers each with a reset (no ACK), which tc_uplink counts
 * for the source. At sig_src.resets of them one ZT_SIG_RESETS event goes
 * out for the window, with the source's counts from the guard. A reset
 * that is a probe's outcome, or one with signals off, counts nothing.
 */
#define P4 "198.18.5.3"
static void test_reset_signal(void **state)
{
	struct env *e = *state;
	struct zt_ev_activity v;
	struct pg_pkt p;
	int i;

	e->cfg.sig_src.resets = 20;
	cfg_write(e);
	fresh_window(e);
	forget(e);
	for (i = 0; i < 30; i++) {
		mk(&p, 4, IPPROTO_TCP, S4, D4, 3000 + i, 8080, TCP_ACK, 1, 0);
		assert_int_equal(xdp_run(e, &p, NULL), XDP_PASS);
	}
	for (i = 0; i < 30; i++) {
		mk(&p, 4, IPPROTO_TCP, D4, S4, 8080, 3000 + i, TCP_RST, 1, 0);
		uplink_run(e, &p);
	}
	drain(e);
	assert_int_equal(reset_events(e, S4, D4, 4, &v), 1);
	assert_int_equal(v.resets, 20);
	assert_int_equal(v.pkts, 30);
	assert_int_equal(v.ack, 30);
	assert_int_equal(v.syn, 0);
	assert_in_range(v.elapsed, 0, 1ULL << e->cfg.win_shift);
	/* An RST with ACK (the answer to a segment without one) counts as well. */
	forget(e);
	e->cfg.sig_src.resets = 2;
	cfg_write(e);
	for (i = 0; i < 2; i++) {
		mk(&p, 4, IPPROTO_TCP, D4, T4, 8080, 3000 + i, TCP_RST | TCP_ACK, 0, 0);
		uplink_run(e, &p);
	}
	drain(e);
	assert_int_equal(reset_events(e, T4, D4, 4, &v), 1);
	assert_int_equal(v.resets, 2);
	assert_int_equal(v.pkts, 0); /* the guard saw nothing of T4 */

	/* A probe's outcome is no reset of this kind; the stray after it is (a source of its own). */
	forget(e);
	e->cfg.sig_src.resets = 1;
	cfg_write(e);
	syn4(&p, P4, D4, 40000, 90);
	xdp_run(e, &p, NULL);
	mk(&p, 4, IPPROTO_TCP, D4, P4, 90, 40000, TCP_RST | TCP_ACK, 0, 0);
	uplink_run(e, &p);
	drain(e);
	assert_int_equal(e->n_res, 1);
	assert_int_equal(reset_events(e, P4, D4, 4, &v), 0);
	mk(&p, 4, IPPROTO_TCP, D4, P4, 90, 40000, TCP_RST | TCP_ACK, 0, 0);
	uplink_run(e, &p);
	drain(e);
	assert_int_equal(reset_events(e, P4, D4, 4, &v), 1);
	assert_int_equal(v.resets, 1);
	assert_int_equal(v.syn, 1);

	/* Probes off: still counted. Signal off (0) or activity off: not. */
	forget(e);
	e->cfg.flags &= ~ZT_GCF_PROBES;
	e->cfg.sig_src.resets = 3;
	cfg_write(e);
	for (i = 0; i < 3; i++) {
		mk(&p, 6, IPPROTO_TCP, D6, S6, 443, 5000 + i, TCP_RST, 1, 0);
		uplink_run(e, &p);
	}
	drain(e);
	assert_int_equal(e->n_res, 0);
	assert_int_equal(reset_events(e, S6, D6, 6, &v), 1);
	assert_int_equal(v.resets, 3);
	forget(e);
	e->cfg.sig_src.resets = 0;
	cfg_write(e);
	for (i = 0; i < 50; i++) {
		mk(&p, 4, IPPROTO_TCP, D4, E4, 8080, 3000 + i, TCP_RST, 1, 0);
		uplink_run(e, &p);
	}
	e->cfg.sig_src.resets = 1;
	e->cfg.flags &= ~ZT_GCF_ACTIVITY;
	cfg_write(e);
	mk(&p, 4, IPPROTO_TCP, D4, T4, 8080, 3000, TCP_RST, 1, 0);
	uplink_run(e, &p);
	drain(e);
	assert_int_equal(e->n_act, 0);
	/* Back on, E4's 50 resets were not counted: its first makes 1, at the threshold of 2. */
	e->cfg.flags |= ZT_GCF_ACTIVITY;
	e->cfg.sig_src.resets = 2;
	cfg_write(e);
	mk(&p, 4, IPPROTO_TCP, D4, E4, 8080, 3000, TCP_RST, 1, 0);
	uplink_run(e, &p);
	drain(e);
	assert_int_equal(e->n_act, 0);
	uplink_run(e, &p);
	drain(e);
	assert_int_equal(reset_events(e, E4, D4, 4, &v), 1);
	assert_int_equal(e->n_bad, 0);
}

/*
 * An RST flood at the node's own address: nothing answers a reset, so the
 * guard counts each one that passes to the node (its routes deliver it
 * locally, or the device does not forward) and that no socket of the
 * node's owns, as tc_uplink counts the resets the node sends. A reset of
 * an established connection, or one the node forwards, counts nothing.
 * The addresses are the private namespace's own (on lo).
 */
#define L4A "198.18.7.1" /* the node's: a listener, and a connection's server side */
#define L4B "198.18.7.2" /* the node's too: that connection's client side */
#define L6A "2001:db8:7::1"
#define F4 "198.18.9.5" /* forwarded: a route through zact0 */
static int tcp_listen_on(const char *addr, int *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t n = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	inet_pton(AF_INET, addr, &a.sin_addr);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 8), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &n), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

/* Half-open signals for src this drain, the last one into *last. */
static int halfopen_events(struct env *e, const char *src, struct zt_ev_activity *last)
{
	__u8 s_addr[16] = { 0 };
	int i, n = 0;

	inet_pton(AF_INET, src, s_addr);
	for (i = 0; i < e->n_act && i < MAXREC; i++) {
		const struct zt_ev_activity *v = &e->act[i];

		if (v->hdr.type != ZT_EV_SRC_ACTIVITY || !(v->signals & ZT_SIG_HALFOPEN) ||
		    memcmp(v->addr, s_addr, 16))
			continue;
		*last = *v;
		n++;
	}
	return n;
}

/*
 * n SYNs from src to D4:8080 through the guard; every answer_every-th is
 * answered by a SYN-ACK through tc_uplink (0: none), which src completes
 * with an ACK when complete is set.
 */
static void syns_answered(struct env *e, const char *src, int sport, int n, int answer_every,
			  int complete)
{
	struct pg_pkt p;

	for (int i = 0; i < n; i++) {
		syn4(&p, src, D4, sport + i, 8080);
		assert_int_equal(xdp_run(e, &p, NULL), XDP_PASS);
		if (!answer_every || i % answer_every)
			continue;
		mk(&p, 4, IPPROTO_TCP, D4, src, 8080, sport + i, TCP_SYN | TCP_ACK, 7000, 0);
		uplink_run(e, &p);
		if (!complete)
			continue;
		mk(&p, 4, IPPROTO_TCP, src, D4, sport + i, 8080, TCP_ACK, 1001, 0);
		assert_int_equal(xdp_run(e, &p, NULL), XDP_PASS);
	}
}

/* 60 SYNs of src's, none completed (answer_every: syns_answered's): one half-open signal. */
static void flooder_signalled(struct env *e, const char *src, int answer_every,
			      struct zt_ev_activity *v)
{
	forget(e);
	syns_answered(e, src, 20000, 60, answer_every, 0);
	drain(e);
	assert_int_equal(halfopen_events(e, src, v), 1);
	assert_true(zt_halfopen(v->syn, v->synack, v->ack) >= 40);
}

/*
 * Half-open handshakes count the SYNs nobody answered less
 * ZT_UNANSWERED_PER_ANSWER for each answered one the source completed
 * (zt_halfopen, tc_uplink counting the SYN-ACKs): a client whose SYNs a
 * full accept queue drops (1 in 20 answered, each completed) raises no
 * signal; a flooder that completes nothing does, answered or not; and one
 * completed handshake excuses no more than ZT_UNANSWERED_PER_ANSWER.
 */
static void test_halfopen_answered(void **state)
{
	struct env *e = *state;
	struct zt_ev_activity v;
	struct zt_addr_key a = { .family = 4 };
	struct zt_src_cell c;

	e->cfg.sig_src.syn = 0;
	e->cfg.sig_src.halfopen = 40;
	cfg_write(e);
	fresh_window(e);
	forget(e);
	syns_answered(e, S4, 20000, 200, 20, 1);
	drain(e);
	assert_int_equal(halfopen_events(e, S4, &v), 0);
	inet_pton(AF_INET, S4, a.addr);
	assert_int_equal(zt_guard_src_activity(&e->dp, &a, &c), 0);
	assert_int_equal(c.count[ZT_RL_SYN], 200);
	assert_int_equal(c.synack, 10);
	assert_int_equal(c.ack, 10);
	assert_int_equal(zt_halfopen(200, 10, 10), 0);

	/* Every SYN answered, none completed: the flooder's. */
	flooder_signalled(e, T4, 1, &v);
	assert_true(v.synack >= 40);
	assert_int_equal(v.ack, 0);
	/* Nothing answered: counted as before. */
	flooder_signalled(e, "198.18.5.7", 0, &v);
	assert_int_equal(v.synack, 0);

	/* One completed handshake and 199 SYNs nobody answered: 64 of them excused. */
	forget(e);
	syns_answered(e, "198.18.5.8", 20000, 200, 200, 1);
	drain(e);
	assert_int_equal(halfopen_events(e, "198.18.5.8", &v), 1);
	assert_int_equal(v.synack, 1);
	assert_int_equal(zt_halfopen(200, 1, 1), 200 - 1 - ZT_UNANSWERED_PER_ANSWER);
	assert_int_equal(e->n_bad, 0);
}

/* n resets from src to dst (ports sport, sport + 1, ...; dport) through the guard, each passed. */
static void rsts_to(struct env *e, int family, const char *src, const char *dst, int sport,
		    int dport, int n)
{
	struct pg_pkt p;

	for (int i = 0; i < n; i++) {
		mk(&p, family, IPPROTO_TCP, src, dst, sport + i, dport, TCP_RST, 1, 0);
		assert_int_equal(xdp_run(e, &p, NULL), XDP_PASS);
	}
}

static void test_rst_stray(void **state)
{
	struct env *e = *state;
	struct sockaddr_in a = { .sin_family = AF_INET };
	struct zt_ev_activity v;
	socklen_t n = sizeof(a);
	int lfd, cfd, afd, lport, cport, i;
	struct pg_pkt p;

	assert_int_equal(system("ip link set lo up && ip addr replace " L4A "/32 dev lo && "
				"ip addr replace " L4B "/32 dev lo && "
				"ip -6 addr replace " L6A "/128 dev lo nodad && "
				"ip link set zact0 up && ip link set zact1 up && "
				"ip addr replace 198.18.8.1/24 dev zact0 && "
				"ip route replace 198.18.9.0/24 via 198.18.8.2 dev zact0"),
			 0);
	lfd = tcp_listen_on(L4A, &lport);
	cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(cfd >= 0);
	inet_pton(AF_INET, L4B, &a.sin_addr);
	assert_int_equal(bind(cfd, (struct sockaddr *)&a, sizeof(a)), 0);
	inet_pton(AF_INET, L4A, &a.sin_addr);
	a.sin_port = htons((uint16_t)lport);
	assert_int_equal(connect(cfd, (struct sockaddr *)&a, sizeof(a)), 0);
	afd = accept(lfd, NULL, NULL);
	assert_true(afd >= 0);
	assert_int_equal(getsockname(cfd, (struct sockaddr *)&a, &n), 0);
	cport = ntohs(a.sin_port);

	e->cfg.sig_src.resets = 3;
	cfg_write(e);
	fresh_window(e);
	forget(e);
	/* Resets of the established connection, either way: the node's own. */
	for (i = 0; i < 5; i++) {
		mk(&p, 4, IPPROTO_TCP, L4B, L4A, cport, lport, TCP_RST | TCP_ACK, 7, 0);
		assert_int_equal(xdp_run(e, &p, NULL), XDP_PASS);
		mk(&p, 4, IPPROTO_TCP, L4A, L4B, lport, cport, TCP_RST, 7, 0);
		assert_int_equal(xdp_run(e, &p, NULL), XDP_PASS);
	}
	drain(e);
	assert_int_equal(e->n_act, 0);
	/* Of no connection: to the listener's port from another one, and to a port nothing has. */
	rsts_to(e, 4, L4B, L4A, 41000, lport, 2);
	drain(e);
	assert_int_equal(e->n_act, 0);
	mk(&p, 4, IPPROTO_TCP, L4B, L4A, 41002, 9, TCP_RST | TCP_ACK, 9, 0);
	assert_int_equal(xdp_run(e, &p, NULL), XDP_PASS);
	drain(e);
	assert_int_equal(reset_events(e, L4B, L4A, 4, &v), 1);
	assert_int_equal(v.resets, 3);
	assert_int_equal(v.pkts, 8); /* the guard's count of L4B this window */
	/* IPv6 alike. */
	forget(e);
	e->cfg.sig_src.resets = 2;
	cfg_write(e);
	rsts_to(e, 6, S6, L6A, 5000, 443, 2);
	drain(e);
	assert_int_equal(reset_events(e, S6, L6A, 6, &v), 1);
	assert_int_equal(v.resets, 2);
	/* Forwarded (the namespace forwards now, and routes F4 out of zact0): not the guard's. */
	forget(e);
	assert_int_equal(system("sysctl -qw net.ipv4.conf.all.forwarding=1"), 0);
	rsts_to(e, 4, T4, F4, 6000, 80, 4);
	/* ... while one to the node itself still counts, with forwarding on. */
	rsts_to(e, 4, T4, L4A, 6000, 9, 2);
	assert_int_equal(system("sysctl -qw net.ipv4.conf.all.forwarding=0"), 0);
	drain(e);
	/* Every reset event is T4's to L4A (reset_events asserts it): F4's made none. */
	assert_int_equal(reset_events(e, T4, L4A, 4, &v), 1);
	assert_int_equal(v.resets, 2);
	/* The signal off: nothing. */
	forget(e);
	e->cfg.sig_src.resets = 0;
	cfg_write(e);
	rsts_to(e, 4, S4, L4A, 7000, 9, 4);
	drain(e);
	assert_int_equal(e->n_act, 0);
	assert_int_equal(e->n_bad, 0);
	close(afd);
	close(cfd);
	close(lfd);
}

/* ---- SYN protection ---- */

static uint16_t csum(const uint8_t *p, size_t n, uint32_t sum)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	if (n & 1)
		sum += (uint32_t)p[n - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The challenge to a SYN: checks it as a client's TCP would; returns its ack number. */
static uint32_t check_challenge(const struct pg_pkt *syn, const struct pg_pkt *c, int family)
{
	int l3 = 14, hl = family == 4 ? 20 : 40, l4 = l3 + hl;
	const uint8_t *sip = syn->buf + l3, *cip = c->buf + l3, *th = c->buf + l4;
	uint8_t pseudo[40];
	size_t plen;
	uint32_t sum;

	assert_int_equal(c->len, (size_t)l4 + 20);
	/* Ethernet and IP addresses swapped. */
	assert_memory_equal(c->buf, syn->buf + 6, 6);
	assert_memory_equal(c->buf + 6, syn->buf, 6);
	if (family == 4) {
		assert_memory_equal(cip + 12, sip + 16, 4);
		assert_memory_equal(cip + 16, sip + 12, 4);
		assert_int_equal(pg_get16(cip + 2), 40);
		assert_int_equal(csum(cip, 20, 0), 0xffff);
		memcpy(pseudo, cip + 12, 8);
		pseudo[8] = 0;
		pseudo[9] = IPPROTO_TCP;
		pseudo[10] = 0;
		pseudo[11] = 20;
		plen = 12;
	} else {
		assert_memory_equal(cip + 8, sip + 24, 16);
		assert_memory_equal(cip + 24, sip + 8, 16);
		assert_int_equal(pg_get16(cip + 4), 20);
		memcpy(pseudo, cip + 8, 32);
		memset(pseudo + 32, 0, 8);
		pseudo[35] = 20;
		pseudo[39] = IPPROTO_TCP;
		plen = 40;
	}
	sum = csum(pseudo, plen, 0);
	assert_int_equal(csum(th, 20, sum), 0xffff);
	/* Ports swapped; SYN-ACK; an ack that is not the SYN's sequence + 1. */
	assert_int_equal(pg_get16(th), pg_get16(syn->buf + l4 + 2));
	assert_int_equal(pg_get16(th + 2), pg_get16(syn->buf + l4));
	assert_int_equal(th[13], TCP_SYN | TCP_ACK);
	assert_int_equal(th[12] >> 4, 5);
	assert_int_not_equal(get32(th + 8), get32(syn->buf + l4 + 4) + 1);
	return get32(th + 8);
}

/*
 * The destination's SYN bucket emptied by a spoofed flood first (from
 * flood_prefix followed by 1..20), then one client's round.
 */
static void challenge_round(struct env *e, int family, const char *client, const char *dst,
			    const char *flood_prefix)
{
	struct zt_addr_key ca = A(client);
	struct pg_pkt syn, out, rst;
	uint32_t ack;
	__u64 before;
	char a[64];

	for (int i = 0; i < 20; i++) {
		snprintf(a, sizeof(a), "%s%d", flood_prefix, i + 1);
		mk(&syn, family, IPPROTO_TCP, a, dst, 2000 + i, 443, TCP_SYN, 1, 0);
		xdp_run(e, &syn, NULL);
	}
	before = xdp_stat(e, ZT_ACT_TX, ZT_XR_SYN_CHALLENGE);

	mk(&syn, family, IPPROTO_TCP, client, dst, 45000, 443, TCP_SYN, 777777, 0);
	assert_int_equal(xdp_run(e, &syn, &out), XDP_TX);
	assert_int_equal(xdp_stat(e, ZT_ACT_TX, ZT_XR_SYN_CHALLENGE), before + 1);
	ack = check_challenge(&syn, &out, family);
	assert_int_equal(zt_guard_verified_check(&e->dp, &ca), 0);

	/* A wrong answer verifies nothing and passes (the endpoint ignores it). */
	mk(&rst, family, IPPROTO_TCP, client, dst, 45000, 443, TCP_RST, ack + 12345, 0);
	assert_int_equal(xdp_run(e, &rst, NULL), XDP_PASS);
	assert_int_equal(zt_guard_verified_check(&e->dp, &ca), 0);
	/* The client's RST, sequence = the challenge's ack: verified, RST dropped. */
	mk(&rst, family, IPPROTO_TCP, client, dst, 45000, 443, TCP_RST, ack, 0);
	assert_int_equal(xdp_run(e, &rst, NULL), XDP_DROP);
	assert_int_equal(zt_guard_verified_check(&e->dp, &ca), 1);
	/* Its SYN again (Linux resends it at once): passes. */
	assert_int_equal(xdp_run(e, &syn, NULL), XDP_PASS);
}

static void test_syn_challenge(void **state)
{
	struct env *e = *state;
	struct zt_ratelimit_cfg rl = { .dst = { [ZT_RL_SYN] = 5 } };
	struct pg_pkt p;
	char a[32];
	int i, passed = 0, tx = 0;

	cfg_limits(e, &rl);
	fresh_window(e);
	/* A spoofed flood: one SYN from each of 100 sources; the bucket lets its 6 through. */
	for (i = 0; i < 100; i++) {
		int v;

		snprintf(a, sizeof(a), "198.18.%d.%d", 100 + i / 250, 1 + i % 250);
		syn4(&p, a, D4, 1024 + i, 443);
		v = xdp_run(e, &p, NULL);
		passed += v == XDP_PASS;
		tx += v == XDP_TX;
	}
	print_message("    100 spoofed SYNs, destination limit 5/s: %d passed, %d challenged\n",
		      passed, tx);
	assert_in_range(passed, 5, 8);
	assert_int_equal(passed + tx, 100);
	drain(e);
	/* A challenged SYN is no probe: its source may be spoofed. */
	assert_int_equal(e->n_probe, passed);
	challenge_round(e, 4, S4, D4, "198.18.110.");
	assert_int_equal(act_stat(e, ZT_AS_VERIFIED_CHALLENGE), 1);
	assert_int_equal(act_stat(e, ZT_AS_BAD_ANSWER), 1);
	assert_int_equal(xdp_stat(e, ZT_ACT_PASS, ZT_XR_SYN_VERIFIED), 1);
	assert_int_equal(xdp_stat(e, ZT_ACT_DROP, ZT_XR_SYN_ANSWER), 1);
	assert_true(dst_act(e, D4).challenged >= 90);
	assert_int_equal(dst_act(e, D4).admitted, 1);
	/* IPv6 alike. */
	challenge_round(e, 6, S6, D6, "2001:db8:110::");
	/* Without the challenge, an unknown source's SYN drops; a verified one still passes. */
	e->cfg.flags &= ~ZT_GCF_SYN_CHALLENGE;
	cfg_write(e);
	syn4(&p, T4, D4, 1000, 443);
	assert_int_equal(xdp_run(e, &p, NULL), XDP_DROP);
	assert_true(xdp_stat(e, ZT_ACT_DROP, ZT_XR_RL_DST_SYN) >= 1);
	syn4(&p, S4, D4, 1001, 443);
	assert_int_equal(xdp_run(e, &p, NULL), XDP_PASS);
}

/* The daemon protects a destination whatever its bucket says; verified clients pass. */
static void test_syn_protect_map(void **state)
{
	struct env *e = *state;
	struct zt_addr_key d = A(D4), s = A(S4);
	struct pg_pkt p, out, sa;

	syn4(&p, T4, D4, 1000, 22);
	assert_int_equal(xdp_run(e, &p, NULL), XDP_PASS); /* no limit, no protection */
	assert_int_equal(zt_guard_protect_add(&e->dp, &d, 0), 0);
	assert_int_equal(zt_datapath_guard_cfg(&e->dp, &e->cfg), 0);
	assert_int_equal(e->cfg.protect_count, 1);
	assert_int_equal(xdp_run(e, &p, &out), XDP_TX);
	check_challenge(&p, &out, 4);
	/*
	 * The first SYN was a probe. The challenge leaving through the uplink's
	 * egress (tc_guard's do) is no answer to it; the server's SYN-ACK is.
	 */
	forget(e);
	uplink_run(e, &out);
	drain(e);
	assert_int_equal(e->n_res, 0);
	mk(&sa, 4, IPPROTO_TCP, D4, T4, 22, 1000, TCP_SYN | TCP_ACK, 123456, 0);
	uplink_run(e, &sa);
	drain(e);
	assert_int_equal(e->n_res, 1);
	/* A SYN with data is cut to the challenge's length (a TFO SYN carries some). */
	mk(&p, 4, IPPROTO_TCP, T4, D4, 1003, 22, TCP_SYN, 5000, 24);
	assert_int_equal(xdp_run(e, &p, &out), XDP_TX);
	check_challenge(&p, &out, 4);
	syn4(&p, T4, D4, 1000, 22);
	/* Another destination is not protected. */
	syn4(&p, T4, E4, 1000, 22);
	assert_int_equal(xdp_run(e, &p, NULL), XDP_PASS);
	/* A client the daemon vouches for. */
	assert_int_equal(zt_guard_verified_add(&e->dp, &s), 0);
	syn4(&p, S4, D4, 1000, 22);
	assert_int_equal(xdp_run(e, &p, NULL), XDP_PASS);
	assert_int_equal(zt_guard_verified_del(&e->dp, &s), 0);
	assert_int_equal(xdp_run(e, &p, NULL), XDP_TX);
	/* An expired protection protects nothing. */
	assert_int_equal(zt_guard_protect_add(&e->dp, &d, 1000000), 0); /* 1 ms */
	sleep_ms(20);
	syn4(&p, T4, D4, 1002, 22);
	assert_int_equal(xdp_run(e, &p, NULL), XDP_PASS);
	assert_int_equal(zt_guard_protect_del(&e->dp, &d), 0);
	assert_int_equal(zt_datapath_guard_cfg(&e->dp, &e->cfg), 0);
	assert_int_equal(e->cfg.protect_count, 0);
}

/*
 * The setters of guard_cfg run on the loop and on the response engine's
 * threads: a watch set for an incident on one thread and SYN protection or
 * the activity flag on another must not undo each other's fields.
 */
struct setter_arg {
	struct env *e;
	int which;
	int lost; /* read-backs that did not show this thread's own last write */
};

static void *setter(void *p)
{
	struct setter_arg *a = p;
	struct zt_addr_key k = A(S4);
	struct zt_guard_cfg c;

	for (int i = 0; i < 20000; i++) {
		bool on = !(i & 1);

		if (a->which)
			zt_datapath_set_activity(&a->e->dp, on);
		else if (on)
			zt_guard_watch_add(&a->e->dp, &k, 0, (uint64_t)i + 1, 0);
		else
			zt_guard_watch_del(&a->e->dp, &k);
		if (zt_datapath_guard_cfg(&a->e->dp, &c))
			a->lost++;
		else if (a->which ? !!(c.flags & ZT_GCF_ACTIVITY) != on : c.watch_count != on)
			a->lost++;
	}
	return NULL;
}

static void test_cfg_setters_concurrent(void **state)
{
	struct env *e = *state;
	struct setter_arg a[2] = { { e, 0, 0 }, { e, 1, 0 } };
	pthread_t t[2];

	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, setter, &a[i]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(a[0].lost, 0);
	assert_int_equal(a[1].lost, 0);
}

/* ---- captures ---- */

static void put_block(struct env *e, const char *addr)
{
	struct zt_ip4_key k = { .prefixlen = 32 };
	struct zt_block_entry v = { .reason = ZT_BR_FLOOD,
				    .source = ZT_BS_DETECTOR,
				    .prefixlen = 32 };
	struct zt_prefix_set ps = { .v4_count = 1, .v4_lens = { 32 } };
	__u32 zero = 0;

	inet_pton(AF_INET, addr, k.addr);
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(e->x->maps.blocklist_v4), &k, &v, 0), 0);
	assert_int_equal(
		bpf_map_update_elem(bpf_map__fd(e->x->maps.blocklist_prefixes), &zero, &ps, 0), 0);
}

static void test_capture(void **state)
{
	struct env *e = *state;
	struct zt_addr_key s = A(S4), d = A(E4);
	struct zt_watch_val w;
	struct pg_pkt p, big;

	forget(e);
	assert_int_equal(zt_guard_watch_add(&e->dp, &s, 0, 77, 0), 0);
	udp4(&p, S4, D4, 40000, 53);
	assert_int_equal(xdp_run(e, &p, NULL), XDP_PASS);
	udp4(&p, T4, D4, 40000, 53); /* not watched */
	assert_int_equal(xdp_run(e, &p, NULL), XDP_PASS);
	mk(&big, 4, IPPROTO_UDP, S4, D4, 40000, 53, 0, 0, 400);
	assert_int_equal(xdp_run(e, &big, NULL), XDP_PASS);
	drain(e);
	assert_int_equal(e->n_cap, 2);
	udp4(&p, S4, D4, 40000, 53);
	assert_int_equal(e->cap[0].incident_id, 77);
	assert_int_equal(e->cap[0].point, ZT_CAP_XDP);
	assert_int_equal(e->cap[0].action, ZT_ACT_PASS);
	assert_int_equal(e->cap[0].reason, ZT_XR_OK);
	assert_int_equal(e->cap[0].matched, ZT_CAP_MATCH_SRC);
	assert_int_equal(e->cap[0].orig_len, p.len);
	assert_int_equal(e->cap[0].cap_len, p.len);
	assert_int_equal(e->cap[0].represents, 1);
	assert_memory_equal(e->cap[0].data, p.buf, p.len);
	assert_memory_equal(e->cap[0].addr, s.addr, 16);
	assert_int_equal(e->cap[1].orig_len, big.len);
	assert_int_equal(e->cap[1].cap_len, ZT_CAP_SNAPLEN);
	assert_memory_equal(e->cap[1].data, big.buf, ZT_CAP_SNAPLEN);

	/* Dropped packets too: the watched source on the blocklist. */
	forget(e);
	put_block(e, S4);
	assert_int_equal(xdp_run(e, &p, NULL), XDP_DROP);
	drain(e);
	assert_int_equal(e->n_cap, 1);
	assert_int_equal(e->cap[0].action, ZT_ACT_DROP);
	assert_int_equal(e->cap[0].reason, ZT_XR_BLOCKLIST);

	/* A watched destination, and what leaves towards it through the uplink. */
	forget(e);
	assert_int_equal(zt_guard_watch_add(&e->dp, &d, 0, 78, 0), 0);
	udp4(&p, T4, E4, 40000, 53);
	assert_int_equal(xdp_run(e, &p, NULL), XDP_PASS);
	udp4(&p, "198.19.0.1", E4, 53, 40000);
	uplink_run(e, &p);
	drain(e);
	assert_int_equal(e->n_cap, 2);
	assert_int_equal(e->cap[0].matched, ZT_CAP_MATCH_DST);
	assert_int_equal(e->cap[0].incident_id, 78);
	assert_int_equal(e->cap[1].point, ZT_CAP_UPLINK_OUT);
	assert_memory_equal(e->cap[1].data, p.buf, p.len);
	assert_int_equal(zt_guard_watch_get(&e->dp, &d, &w), 0);
	assert_int_equal(w.captured, 2);

	/* Gone from the map, gone from the captures. */
	forget(e);
	assert_int_equal(zt_guard_watch_del(&e->dp, &d), 0);
	assert_int_equal(zt_guard_watch_del(&e->dp, &s), 0);
	udp4(&p, T4, E4, 40000, 53);
	xdp_run(e, &p, NULL);
	drain(e);
	assert_int_equal(e->n_cap, 0);
	assert_int_equal(zt_datapath_guard_cfg(&e->dp, &e->cfg), 0);
	assert_int_equal(e->cfg.watch_count, 0);
}

/* Under a flood: at most the watch's rate, and `represents` accounts for every packet. */
static void test_capture_sampled(void **state)
{
	struct env *e = *state;
	struct zt_addr_key s = A(S4);
	struct zt_watch_val w;
	struct pg_pkt p;
	__u64 represents = 0;
	int i;

	forget(e);
	assert_int_equal(zt_guard_watch_add(&e->dp, &s, 0, 9, 10), 0);
	for (i = 0; i < 500; i++) {
		udp4(&p, S4, D4, 40000, 53);
		xdp_run(e, &p, NULL);
	}
	drain(e);
	for (i = 0; i < e->n_cap; i++)
		represents += e->cap[i].represents;
	assert_int_equal(zt_guard_watch_get(&e->dp, &s, &w), 0);
	print_message("    500 packets, rate 10/s: %d captured, %llu sampled out\n", e->n_cap,
		      (unsigned long long)w.sampled_out);
	/* A second's depth of 10, plus what refilled while the loop ran. */
	assert_in_range(e->n_cap, 10, 20);
	assert_int_equal(w.captured, e->n_cap);
	assert_int_equal(w.sampled_out, 500 - e->n_cap);
	assert_int_equal(represents + w.pending, 500);
	assert_int_equal(act_stat(e, ZT_AS_CAPTURE_SAMPLED_OUT), 500 - e->n_cap);
}

/* A full ring: lost captures are counted and the next one stands for them. */
static void test_capture_ring_full(void **state)
{
	struct env e;
	struct zt_addr_key s = A(S4);
	struct zt_watch_val w;
	struct pg_pkt p;
	__u64 represents = 0;
	int i, n = 60;

	assert_int_equal(env_load(&e, (__u32)sysconf(_SC_PAGESIZE)), 0);
	assert_int_equal(zt_guard_watch_add(&e.dp, &s, 0, 5, 0), 0);
	for (i = 0; i < n; i++) {
		udp4(&p, S4, D4, 40000, 53);
		xdp_run(&e, &p, NULL);
	}
	assert_int_equal(zt_guard_watch_get(&e.dp, &s, &w), 0);
	print_message("    %d packets into a one-page ring: %llu captured, %llu lost\n", n,
		      (unsigned long long)w.captured, (unsigned long long)w.lost);
	assert_true(w.lost > 0);
	assert_int_equal(w.captured + w.lost, n);
	assert_int_equal(act_stat(&e, ZT_AS_CAPTURE_LOST), w.lost);
	drain(&e);
	xdp_run(&e, &p, NULL);
	drain(&e);
	for (i = 0; i < e.n_cap; i++)
		represents += e.cap[i].represents;
	assert_int_equal(represents, n + 1);
	bpf_xdp_detach(hold_ifindex, XDP_FLAGS_SKB_MODE, NULL);
	ring_buffer__free(e.rb);
	tc_uplink__destroy(e.u);
	tc_guard__destroy(e.t);
	xdp_guard__destroy(e.x);
}

/* Allowlisted sources skip the stage: no counts, no limits. */
static void test_allowlist_skips(void **state)
{
	struct env *e = *state;
	struct zt_ratelimit_cfg rl = { .src = { [ZT_RL_SYN] = 10 } };
	struct zt_ip4_key k = { .prefixlen = 32 };
	struct zt_allow_entry v = { 0 };
	struct zt_prefix_set ps = { .allow_v4_used = 1 };
	struct pg_pkt p;
	__u32 zero = 0;
	int i, passed = 0;

	inet_pton(AF_INET, S4, k.addr);
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(e->x->maps.allowlist_v4), &k, &v, 0), 0);
	assert_int_equal(
		bpf_map_update_elem(bpf_map__fd(e->x->maps.blocklist_prefixes), &zero, &ps, 0), 0);
	cfg_limits(e, &rl);
	fresh_window(e);
	for (i = 0; i < 100; i++) {
		syn4(&p, S4, D4, 1024 + i, 443);
		passed += xdp_run(e, &p, NULL) == XDP_PASS;
	}
	assert_int_equal(passed, 100);
	assert_int_equal(src_act(e, S4).count[ZT_RL_ALL], 0);
	assert_int_equal(xdp_stat(e, ZT_ACT_PASS, ZT_XR_ALLOWLIST), 100);
}

/* ---- the events decoder ---- */

/* A well-formed capture record of an IPv4 source at point, with no frame yet. */
static void capture_rec(struct zt_ev_capture *c, __u8 point)
{
	memset(c, 0, sizeof(*c));
	c->hdr.type = ZT_EV_CAPTURE;
	c->hdr.len = sizeof(*c);
	c->family = 4;
	c->point = point;
	c->matched = ZT_CAP_MATCH_SRC;
}

/*
 * A capture's frame as on the wire: a VLAN tag the kernel held beside it
 * (a TC hook's skb->vlan_tci) goes back after the MAC addresses, and the
 * wire length grows by 4; a frame without one, or cut before its
 * ethertype, comes as captured; a record with another tag protocol is
 * malformed.
 */
static void test_capture_frame(void **state)
{
	struct zt_ev_capture c;
	__u8 out[ZT_CAP_SNAPLEN + 4];
	__u32 orig;
	size_t n;

	(void)state;
	capture_rec(&c, ZT_CAP_FROM_POD);
	for (int i = 0; i < ZT_CAP_SNAPLEN; i++)
		c.data[i] = (__u8)i;
	c.data[12] = 0x08; /* IPv4 */
	c.data[13] = 0x00;
	c.orig_len = 1514;
	c.cap_len = ZT_CAP_SNAPLEN;
	n = zt_capture_frame(&c, out, &orig);
	assert_int_equal(n, ZT_CAP_SNAPLEN);
	assert_int_equal(orig, 1514);
	assert_memory_equal(out, c.data, n);
	c.vlan_proto = htons(0x8100);
	c.vlan_tci = 0x2007; /* priority 1, VLAN 7 */
	assert_int_equal(zt_events_check(&c, sizeof(c)), ZT_EV_CAPTURE);
	n = zt_capture_frame(&c, out, &orig);
	assert_int_equal(n, ZT_CAP_SNAPLEN + 4);
	assert_int_equal(orig, 1518);
	assert_memory_equal(out, c.data, 12);
	assert_int_equal(out[12], 0x81);
	assert_int_equal(out[13], 0x00);
	assert_int_equal(out[14], 0x20);
	assert_int_equal(out[15], 0x07);
	assert_memory_equal(out + 16, c.data + 12, ZT_CAP_SNAPLEN - 12);
	c.vlan_proto = htons(0x88a8);
	assert_int_equal(zt_events_check(&c, sizeof(c)), ZT_EV_CAPTURE);
	n = zt_capture_frame(&c, out, &orig);
	assert_int_equal(out[12], 0x88);
	assert_int_equal(out[13], 0xa8);
	c.cap_len = 10; /* cut inside the MAC addresses */
	c.orig_len = 60;
	n = zt_capture_frame(&c, out, &orig);
	assert_int_equal(n, 10);
	assert_int_equal(orig, 60);
	c.vlan_proto = htons(0x0800);
	assert_int_equal(zt_events_check(&c, sizeof(c)), -EINVAL);
}

static void test_events_check(void **state)
{
	struct zt_ev_capture c;
	struct zt_ev_activity a;
	struct zt_ev_probe_result r;
	struct zt_ev_session ss;

	(void)state;
	capture_rec(&c, ZT_CAP_XDP);
	c.orig_len = 60;
	c.cap_len = 60;
	assert_int_equal(zt_events_check(&c, sizeof(c)), ZT_EV_CAPTURE);
	assert_int_equal(zt_events_check(&c, sizeof(c) - 1), -EINVAL);
	c.cap_len = ZT_CAP_SNAPLEN + 1;
	assert_int_equal(zt_events_check(&c, sizeof(c)), -EINVAL);
	c.cap_len = 61; /* more than the frame */
	assert_int_equal(zt_events_check(&c, sizeof(c)), -EINVAL);
	c.cap_len = 60;
	c.point = 9;
	assert_int_equal(zt_events_check(&c, sizeof(c)), -EINVAL);
	memset(&a, 0, sizeof(a));
	a.hdr.type = ZT_EV_SRC_ACTIVITY;
	a.hdr.len = sizeof(a);
	a.family = 6;
	assert_int_equal(zt_events_check(&a, sizeof(a)), ZT_EV_SRC_ACTIVITY);
	a.family = 5;
	assert_int_equal(zt_events_check(&a, sizeof(a)), -EINVAL);
	a.family = 4;
	a.hdr.len = sizeof(a) + 8; /* says it is longer than it is */
	assert_int_equal(zt_events_check(&a, sizeof(a)), -EINVAL);
	memset(&r, 0, sizeof(r));
	r.hdr.type = ZT_EV_PROBE_RESULT;
	r.hdr.len = sizeof(r);
	r.family = 4;
	r.result = ZT_PROBE_CLOSED;
	assert_int_equal(zt_events_check(&r, sizeof(r)), ZT_EV_PROBE_RESULT);
	r.result = ZT_PROBE_STRAY_PROTO;
	assert_int_equal(zt_events_check(&r, sizeof(r)), ZT_EV_PROBE_RESULT);
	r.result = ZT_PROBE_STRAY_DENIED;
	assert_int_equal(zt_events_check(&r, sizeof(r)), ZT_EV_PROBE_RESULT);
	r.result = ZT_PROBE_STRAY_DENIED + 1;
	assert_int_equal(zt_events_check(&r, sizeof(r)), -EINVAL);
	r.result = 0;
	assert_int_equal(zt_events_check(&r, sizeof(r)), -EINVAL);
	memset(&ss, 0, sizeof(ss));
	ss.hdr.type = ZT_EV_SESSION;
	ss.hdr.len = sizeof(ss);
	ss.key.family = 6;
	ss.key.proto = IPPROTO_TCP;
	ss.val.dir = ZT_DIR_EGRESS;
	ss.val.state = ZT_CT_CLOSED;
	assert_int_equal(zt_events_check(&ss, sizeof(ss)), ZT_EV_SESSION);
	assert_int_equal(zt_events_check(&ss, sizeof(ss) - 1), -EINVAL);
	ss.key.proto = IPPROTO_UDP; /* sessions are TCP's */
	assert_int_equal(zt_events_check(&ss, sizeof(ss)), -EINVAL);
	ss.key.proto = IPPROTO_TCP;
	ss.val.dir = ZT_DIR_MAX;
	assert_int_equal(zt_events_check(&ss, sizeof(ss)), -EINVAL);
	ss.val.dir = ZT_DIR_INGRESS;
	ss.key.family = 0;
	assert_int_equal(zt_events_check(&ss, sizeof(ss)), -EINVAL);
	/* A session of the node's own: a family, and its start not after its end. */
	{
		struct zt_ev_host_session hs = {
			.hdr = { .type = ZT_EV_HOST_SESSION, .len = sizeof(hs), .ts_ns = 5000 },
			.family = 4,
			.first_ns = 4000
		};

		assert_int_equal(zt_events_check(&hs, sizeof(hs)), ZT_EV_HOST_SESSION);
		assert_int_equal(zt_events_check(&hs, sizeof(hs) - 1), -EINVAL);
		hs.first_ns = 6000;
		assert_int_equal(zt_events_check(&hs, sizeof(hs)), -EINVAL);
		hs.first_ns = 4000;
		hs.family = 5;
		assert_int_equal(zt_events_check(&hs, sizeof(hs)), -EINVAL);
	}
	/*
	 * Logins refused: a family, an origin, a kind, a count of at least one
	 * and at most the session's so far, its session's start not after it.
	 */
	{
		struct zt_ev_refused sr = {
			.hdr = { .type = ZT_EV_REFUSED, .len = sizeof(sr), .ts_ns = 5000 },
			.family = 6,
			.origin = ZT_REFUSED_FROM_NODE,
			.refused = 1,
			.count = 1,
		};

		assert_int_equal(zt_events_check(&sr, sizeof(sr)), ZT_EV_REFUSED);
		assert_int_equal(zt_events_check(&sr, sizeof(sr) - 1), -EINVAL);
		sr.first_ns = 6000;
		assert_int_equal(zt_events_check(&sr, sizeof(sr)), -EINVAL);
		sr.first_ns = 4000;
		sr.origin = 0;
		assert_int_equal(zt_events_check(&sr, sizeof(sr)), -EINVAL);
		sr.origin = ZT_REFUSED_FROM_ENDPOINT;
		sr.refused = 0;
		assert_int_equal(zt_events_check(&sr, sizeof(sr)), -EINVAL);
		sr.refused = 2;
		sr.family = 0;
		assert_int_equal(zt_events_check(&sr, sizeof(sr)), -EINVAL);
		sr.family = 4;
		sr.kind = ZT_REFUSED_CLEAR;
		sr.count = 2;
		assert_int_equal(zt_events_check(&sr, sizeof(sr)), ZT_EV_REFUSED);
		sr.count = 3; /* more than the session's */
		assert_int_equal(zt_events_check(&sr, sizeof(sr)), -EINVAL);
		sr.count = 0;
		assert_int_equal(zt_events_check(&sr, sizeof(sr)), -EINVAL);
		sr.count = 1;
		sr.kind = 2;
		assert_int_equal(zt_events_check(&sr, sizeof(sr)), -EINVAL);
	}
	r.hdr.type = ZT_EV_FLOW_END; /* reserved: no producer, no record */
	assert_int_equal(zt_events_check(&r, sizeof(r)), -EINVAL);
	r.hdr.type = ZT_EV_MAX;
	assert_int_equal(zt_events_check(&r, sizeof(r)), -EINVAL);
}

/* A TCP segment from S4:sport to D4:8080 whose payload is text. */
static struct pg_pkt *tcp_text4(struct pg_pkt *p, int sport, const char *text)
{
	size_t n = strlen(text);

	mk(p, 4, IPPROTO_TCP, S4, D4, sport, 8080, 0x18, 1000, (int)n);
	memcpy(p->buf + p->off[PG_PAYLOAD], text, n);
	return p;
}

/* The host_replies entry of S4:sport's connection to D4:8080: 0 and *v, or -1. */
static int reply_entry(struct env *e, int sport, struct zt_host_reply *v)
{
	struct zt_host_reply_key k = { .family = 4,
				       .node_port = 8080,
				       .client_port = (__u16)sport };

	inet_pton(AF_INET, D4, k.node);
	inet_pton(AF_INET, S4, k.client);
	return bpf_map_lookup_elem(bpf_map__fd(e->x->maps.host_replies), &k, v);
}

/*
 * Credentials submitted to a service of the node's (lib/cred.h): the guard
 * puts their hash on the connection's host_replies entry, for tc_uplink to
 * read the service's answer to them; two submissions that differ hash
 * apart, the same bytes alike. Not a POST without a password field, a GET
 * that names one, a POST whose first segment has only its headers, or
 * anything with probe events off.
 */
static void test_cred_at_uplink(void **state)
{
	static const char *const form =
		"POST /login HTTP/1.1\r\nHost: node\r\n\r\nusername=admin&password=guess1";
	struct env *e = *state;
	struct zt_host_reply v, w;
	struct pg_pkt p;

	assert_int_equal(xdp_run(e, tcp_text4(&p, 41001, form), NULL), XDP_PASS);
	assert_int_equal(reply_entry(e, 41001, &v), 0);
	assert_int_equal(v.cred, 1);
	assert_int_not_equal(v.cred_hash, 0);
	assert_int_equal(v.refused, 0);
	/* Other credentials on the same connection hash apart; the same again alike. */
	xdp_run(e,
		tcp_text4(
			&p, 41001,
			"POST /login HTTP/1.1\r\nHost: node\r\n\r\nusername=admin&password=guess2"),
		NULL);
	assert_int_equal(reply_entry(e, 41001, &w), 0);
	assert_int_not_equal(w.cred_hash, v.cred_hash);
	xdp_run(e, tcp_text4(&p, 41002, form), NULL);
	assert_int_equal(reply_entry(e, 41002, &w), 0);
	assert_int_equal(w.cred_hash, v.cred_hash);
	/* JSON keys too. */
	xdp_run(e, tcp_text4(&p, 41003, "POST /api/login HTTP/1.1\r\n\r\n{\"pwd\": \"x\"}"), NULL);
	assert_int_equal(reply_entry(e, 41003, &w), 0);
	/* No password field, a GET, headers alone: nothing. */
	xdp_run(e, tcp_text4(&p, 41004, "POST /comments HTTP/1.1\r\n\r\ntext=a+passing+remark"),
		NULL);
	assert_int_not_equal(reply_entry(e, 41004, &w), 0);
	xdp_run(e, tcp_text4(&p, 41005, "GET /login?password=x HTTP/1.1\r\n\r\n"), NULL);
	assert_int_not_equal(reply_entry(e, 41005, &w), 0);
	xdp_run(e, tcp_text4(&p, 41006, "POST /login HTTP/1.1\r\nContent-Length: 30\r\n\r\n"),
		NULL);
	assert_int_not_equal(reply_entry(e, 41006, &w), 0);
	/* Probe events off: the guard reads nothing. */
	e->cfg.flags &= ~ZT_GCF_PROBES;
	cfg_write(e);
	xdp_run(e, tcp_text4(&p, 41007, form), NULL);
	assert_int_not_equal(reply_entry(e, 41007, &w), 0);
	e->cfg.flags |= ZT_GCF_PROBES;
	cfg_write(e);
}

/* The daemon's settings: intervals, depths and windows from rates and HZ. */
static void test_cfg_math(void **state)
{
	struct zt_guard_cfg c;
	struct zt_ratelimit_cfg rl = { .src = { [ZT_RL_SYN] = 2000, [ZT_RL_UDP] = 20000 },
				       .dst = { [ZT_RL_ALL] = 1000000, [ZT_RL_SYN] = 250 } };

	(void)state;
	assert_int_equal(zt_guard_win_shift(100), 7);
	assert_int_equal(zt_guard_win_shift(250), 8);
	assert_int_equal(zt_guard_win_shift(300), 8);
	assert_int_equal(zt_guard_win_shift(1000), 10);
	zt_guard_cfg_defaults(&c, 250);
	assert_int_equal(zt_guard_cfg_set_ratelimits(&c, &rl), 0);
	assert_int_equal(c.src_interval_ns[ZT_RL_SYN], 500000);
	assert_int_equal(c.src_interval_ns[ZT_RL_UDP], 50000);
	assert_int_equal(c.src_interval_ns[ZT_RL_ICMP], 0);
	assert_int_equal(c.src_burst_ns, 1000000000ULL);
	/* 250 jiffies a second << 16: one SYN a jiffy at 250/s. */
	assert_int_equal(c.dst_interval[ZT_RL_SYN], 65536);
	assert_int_equal(c.dst_interval[ZT_RL_ALL], 16); /* 16384000 / 1e6 */
	assert_int_equal(c.dst_burst, 250u << 16);
	rl.src[ZT_RL_ALL] = 2000000000u;
	assert_int_equal(zt_guard_cfg_set_ratelimits(&c, &rl), -EINVAL);
	/* Linear counting: no bit 0, half the bits ~44, every bit the saturation figure. */
	assert_true(zt_lc_estimate(0, 64) == 0);
	assert_true(zt_lc_estimate(32, 64) > 44.3 && zt_lc_estimate(32, 64) < 44.4);
	assert_true(zt_lc_estimate(64, 64) > 310 && zt_lc_estimate(64, 64) < 311);
}

int main(void)
{
	static const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_counts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_signal_elapsed_from_first_packet, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_counts_many_sources, setup, teardown),
		cmocka_unit_test_setup_teardown(test_distinct, setup, teardown),
		cmocka_unit_test_setup_teardown(test_src_limit_and_refill, setup, teardown),
		cmocka_unit_test_setup_teardown(test_src_collision_isolated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dst_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dst_shared_cell, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dst_several_cpus, setup, teardown),
		cmocka_unit_test_setup_teardown(test_signals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_signals_follow_rates, setup, teardown),
		cmocka_unit_test(test_signals_cover_rates),
		cmocka_unit_test_setup_teardown(test_probes_and_results, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stealth_probes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_strays, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_signal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_halfopen_answered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rst_stray, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scan_brake, setup, teardown),
		cmocka_unit_test_setup_teardown(test_syn_challenge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_syn_protect_map, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cfg_setters_concurrent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_capture, setup, teardown),
		cmocka_unit_test_setup_teardown(test_capture_sampled, setup, teardown),
		cmocka_unit_test(test_capture_ring_full),
		cmocka_unit_test_setup_teardown(test_allowlist_skips, setup, teardown),
		cmocka_unit_test(test_events_check),
		cmocka_unit_test(test_capture_frame),
		cmocka_unit_test_setup_teardown(test_cred_at_uplink, setup, teardown),
		cmocka_unit_test(test_cfg_math),
	};
	cpu_set_t set;

	/* One CPU: the per-CPU event limits and counters stay where the test reads them. */
	if (sched_getaffinity(0, sizeof(all_cpus), &all_cpus))
		CPU_ZERO(&all_cpus);
	CPU_ZERO(&set);
	CPU_SET(sched_getcpu() < 0 ? 0 : sched_getcpu(), &set);
	if (sched_setaffinity(0, sizeof(set), &set) || unshare(CLONE_NEWNET) ||
	    system("ip link add zact0 type veth peer name zact1 >/dev/null 2>&1") != 0) {
		fprintf(stderr, "test_activity: needs root (a private network namespace)\n");
		return 1;
	}
	hold_ifindex = (int)if_nametoindex("zact0");
	if (zt_kernel_hz_config(&hz))
		hz = 250;
	int r = cmocka_run_group_tests_name("activity (xdp_guard)", tests, NULL, NULL);

	hook_tc = 1;
	r |= cmocka_run_group_tests_name("activity (tc_guard)", tests, NULL, NULL);
	return r ? 1 : 0;
}
