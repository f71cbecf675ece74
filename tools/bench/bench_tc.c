// SPDX-License-Identifier: GPL-2.0-only
/*
 * bench_tc: what tc_endpoint's tc_from_pod costs per packet, through
 * BPF_PROG_TEST_RUN, beside an empty TC program (bpf/tc_empty.bpf.c:
 * return TC_ACT_OK), with 10k policy entries and an ipcache loaded:
 *   - a packet of an established flow, original direction (one conntrack
 *     lookup) and reply direction (two);
 *   - new flows: a fresh source port on every packet, so every call takes
 *     the whole path (ipcache, two policy lookups, isolation, conntrack
 *     insert, ring-buffer event), allowed and denied.
 * With -i N, N threat-intel destination hosts (ioc_host_v4) and 1500
 * destination /24s (ioc_lpm_v4, as a DROP list) are loaded and switched
 * on, none of them the flows' destinations: a new flow then also pays the
 * IOC check on a miss (the common case), the host map and the trie.
 * Every call's verdict is checked; a wrong one makes the exit code 1.
 *
 * Both directions of one established flow at once, each on a CPU of its
 * own (tc_from_pod sending on CPU 0, tc_to_pod answering on CPU 1), as a
 * flow's packets and its replies often run: what the two CPUs writing one
 * conntrack entry cost shows as the ratio to each direction alone.
 *
 * Today's program, the object built from commit fe7a5f7 before the flow
 * features and the activity stage (tools/bench/baseline/README.md), runs
 * the same packets on maps filled the same way, rounds taking turns with
 * the current program: the "x today" column is the current program's cost
 * as a ratio of its.
 *
 * Unlike XDP, a sched_cls program run by BPF_PROG_TEST_RUN goes through no
 * dispatcher: the kernel builds one skb and runs the program `repeat`
 * times on it, timing the loop. So the established path is measured with a
 * large repeat (the same packet, the same flow, every time). A new flow
 * cannot be repeated on one skb (the second run finds the entry), so each
 * new-flow packet is its own call with repeat 1; the kernel's duration then
 * holds one run plus one clock read, and the empty program measured the same
 * way (repeat 1) is the floor it is compared with. Figures are the median
 * over rounds, in kernel-reported ns (syscall and skb setup excluded).
 *
 * The programs run in a network namespace of our own, on its loopback
 * device (ifindex 1, registered as the endpoint): no packet is sent
 * anywhere, and the namespace goes away with the process. Nothing is
 * pinned. The ring buffer is drained between batches, outside the timing.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/pkt_cls.h>

#include "ztagent.h"
#include "tc_endpoint.skel.h"
#include "tc_empty.skel.h"

#define PKT_LEN 74 /* Ethernet + IPv4 + TCP + 20 bytes of payload */
#define POD_ID 1000u
#define PEER_ID 2000u
#define PEER_NET_ID (ZT_ID_FIRST_CIDR + 1)
#define ALLOW_PORT 443
#define DENY_PORT 444
#define IFINDEX 1 /* the namespace's loopback */
#define MAX_ROUNDS 32
#define BASE_OBJ "tools/bench/baseline/tc_endpoint-fe7a5f7.bpf.o"

/* The maps a program set is filled through, and its two programs. */
struct ep_set {
	int policy, ipcache, endpoints, isolation, pol_state;
	int from_pod, to_pod;
};

static struct {
	int rounds, repeat, nflows, npol, nioc;
} opt = { .rounds = 7, .repeat = 200000, .nflows = 8192, .npol = 10000 };

static int bad_verdicts;

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "bench_tc: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

/* TCP over IPv4; addresses 198.18.0.0/15 only. */
static void mkpkt(uint8_t *b, const char *src, const char *dst, uint16_t sport, uint16_t dport,
		  uint8_t flags)
{
	memset(b, 0, PKT_LEN);
	memcpy(b, "\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01", 12);
	put16(b + 12, ETH_P_IP);
	b[14] = 0x45;
	put16(b + 16, PKT_LEN - 14);
	b[22] = 64;
	b[23] = IPPROTO_TCP;
	inet_pton(AF_INET, src, b + 26);
	inet_pton(AF_INET, dst, b + 30);
	put16(b + 34, sport);
	put16(b + 36, dport);
	b[46] = 5 << 4;
	b[47] = flags;
	put16(b + 48, 65535);
}

/* Kernel ns per run of prog on the packet, repeated; checks the verdict. */
static double run(int fd, uint8_t *pkt, int repeat, int want)
{
	struct __sk_buff ctx = { .ifindex = IFINDEX };
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = pkt, .data_size_in = PKT_LEN, .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx), .repeat = repeat);

	if (bpf_prog_test_run_opts(fd, &o) < 0)
		die("BPF_PROG_TEST_RUN: %s", strerror(errno));
	if ((int)o.retval != want)
		bad_verdicts++;
	return o.duration;
}

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int on_event(void *ctx, void *data, size_t size)
{
	(*(long *)ctx)++;
	return 0;
}

static void pol_put(int fd, __u32 plen, __u8 slot, __u8 dir, __u32 local, __u32 peer, __u8 proto,
		    __u16 port, __u8 verdict, __u32 rule)
{
	struct zt_pol_val v = {
		.rule_id = rule, .audit_rule_id = rule, .verdict = verdict, .audit_verdict = verdict
	};
	struct zt_pol_key k;

	zt_pol_key_fill(&k, plen, slot, dir, local, peer, proto, port);
	if (bpf_map_update_elem(fd, &k, &v, 0))
		die("policy update: %s", strerror(errno));
}

static void ipc_put(int fd, const char *addr, int plen, __u32 identity)
{
	struct zt_ipcache_key4 k = { .prefixlen = 8 + plen, .slot = 1 };
	struct zt_ipcache_val v = { .identity = identity };

	inet_pton(AF_INET, addr, k.addr);
	if (bpf_map_update_elem(fd, &k, &v, 0))
		die("ipcache update: %s", strerror(errno));
}

/*
 * The daemon's view of a busy node in slot 1: 100 local identities, 100
 * peer identities, a mix of single ports and port blocks, both directions;
 * among them the entries the bench's flows meet.
 */
static void fill_maps(const struct ep_set *s)
{
	int pol = s->policy, ipc = s->ipcache;
	struct zt_endpoint_info ep = { .ep_id = 1, .identity = POD_ID };
	struct zt_iso_val iso = { .isolated = 1, .audit_isolated = 1, .rule_id = 9 };
	struct zt_pol_state st = { .gen = 1 };
	__u32 ifindex = IFINDEX, zero = 0;
	int n = 0, i;
	char a[32];

	if (bpf_map_update_elem(s->endpoints, &ifindex, &ep, 0))
		die("endpoints update: %s", strerror(errno));
	for (i = 0; i < ZT_DIR_MAX; i++) {
		struct zt_iso_key k = { .slot = 1, .dir = (__u8)i, .identity = POD_ID };

		if (bpf_map_update_elem(s->isolation, &k, &iso, 0))
			die("pol_isolation update: %s", strerror(errno));
	}
	/* Endpoints 198.18.0.0/22 (/32 each), a /24 of peers, the rest of the /15. */
	for (i = 0; i < 1000; i++) {
		snprintf(a, sizeof(a), "198.18.%d.%d", i / 250, i % 250 + 1);
		ipc_put(ipc, a, 32, POD_ID + (__u32)(i % 100));
	}
	ipc_put(ipc, "198.18.8.0", 24, PEER_NET_ID);
	ipc_put(ipc, "198.18.0.0", 15, PEER_NET_ID + 1);

	pol_put(pol, ZT_POL_PLEN_FULL, 1, ZT_DIR_EGRESS, POD_ID, PEER_NET_ID, IPPROTO_TCP,
		ALLOW_PORT, ZT_VERDICT_ALLOW, 1);
	pol_put(pol, ZT_POL_PLEN_FULL, 1, ZT_DIR_EGRESS, POD_ID, PEER_ID, IPPROTO_TCP, ALLOW_PORT,
		ZT_VERDICT_ALLOW, 2);
	n = 2;
	for (i = 0; n < opt.npol; i++) {
		__u32 local = POD_ID + (__u32)(i % 100), peer = PEER_ID + (__u32)(i / 100 % 100);
		__u8 dir = (__u8)(i / 10000 % 2);
		__u16 port = (__u16)(1000 + i / 20000 * 7);

		if (i % 5 == 4) /* a block of 64 ports */
			pol_put(pol, ZT_POL_PLEN_PROTO + 10, 1, dir, local, peer, IPPROTO_UDP,
				(__u16)(port & 0xffc0), ZT_VERDICT_ALLOW, (__u32)i);
		else
			pol_put(pol, ZT_POL_PLEN_FULL, 1, dir, local, peer, IPPROTO_TCP, port,
				i % 7 ? ZT_VERDICT_ALLOW : ZT_VERDICT_DENY, (__u32)i);
		n++;
	}
	if (bpf_map_update_elem(s->pol_state, &zero, &st, 0))
		die("pol_state update: %s", strerror(errno));
}

/*
 * The flows the established rows run: pkt, a flow the pod opened (SYN out,
 * SYN-ACK in, then its ACKs: one lookup); rpkt, the pod's answers in a flow
 * a peer opened (the swapped tuple first, then its own: two lookups).
 */
static void make_flows(const struct ep_set *s, uint8_t *pkt, uint8_t *rpkt)
{
	uint8_t in[PKT_LEN];

	mkpkt(pkt, "198.18.0.10", "198.18.8.20", 40000, ALLOW_PORT, 0x02);
	run(s->from_pod, pkt, 1, TC_ACT_OK);
	mkpkt(rpkt, "198.18.8.20", "198.18.0.10", ALLOW_PORT, 40000, 0x12);
	run(s->to_pod, rpkt, 1, TC_ACT_OK);
	mkpkt(pkt, "198.18.0.10", "198.18.8.20", 40000, ALLOW_PORT, 0x10);
	mkpkt(in, "198.18.8.30", "198.18.0.10", 50000, 22, 0x02);
	/* Ingress is isolated: make it allowed for this one peer port. */
	pol_put(s->policy, ZT_POL_PLEN_FULL, 1, ZT_DIR_INGRESS, POD_ID, PEER_NET_ID, IPPROTO_TCP,
		22, ZT_VERDICT_ALLOW, 3);
	run(s->to_pod, in, 1, TC_ACT_OK);
	mkpkt(rpkt, "198.18.0.10", "198.18.8.30", 22, 50000, 0x10);
}

static int map_fd(struct bpf_object *o, const char *name)
{
	struct bpf_map *m = bpf_object__find_map_by_name(o, name);

	if (!m)
		die("%s: no map %s", BASE_OBJ, name);
	return bpf_map__fd(m);
}

static int prog_fd(struct bpf_object *o, const char *name)
{
	struct bpf_program *p = bpf_object__find_program_by_name(o, name);

	if (!p)
		die("%s: no program %s", BASE_OBJ, name);
	return bpf_program__fd(p);
}

/* Today's object, loaded with nothing pinned; its ring buffer is drained into *events. */
static struct bpf_object *load_today(struct ep_set *t, struct ring_buffer **rb, long *events)
{
	struct bpf_object *o = bpf_object__open_file(BASE_OBJ, NULL);
	struct bpf_map *map;

	if (!o)
		die("cannot open %s: %s (run from the repository's top)", BASE_OBJ,
		    strerror(errno));
	bpf_object__for_each_map (map, o)
		bpf_map__set_pin_path(map, NULL);
	bpf_map__set_max_entries(bpf_object__find_map_by_name(o, "conntrack"), 262144);
	bpf_map__set_max_entries(bpf_object__find_map_by_name(o, "events"), 16 << 20);
	if (bpf_object__load(o))
		die("cannot load %s: %s", BASE_OBJ, strerror(errno));
	*t = (struct ep_set){ .policy = map_fd(o, "policy"),
			      .ipcache = map_fd(o, "ipcache_v4"),
			      .endpoints = map_fd(o, "endpoints"),
			      .isolation = map_fd(o, "pol_isolation"),
			      .pol_state = map_fd(o, "pol_state"),
			      .from_pod = prog_fd(o, "tc_from_pod"),
			      .to_pod = prog_fd(o, "tc_to_pod") };
	*rb = ring_buffer__new(map_fd(o, "events"), on_event, events, NULL);
	if (!*rb)
		die("ring_buffer__new (today's): %s", strerror(errno));
	return o;
}

/* opt.nioc hosts of 100.64.0.0/10 and 1500 /24s of 100.128.0.0/10, action block, then on. */
static void fill_ioc(struct tc_endpoint *s)
{
	int h = bpf_map__fd(s->maps.ioc_host_v4), l = bpf_map__fd(s->maps.ioc_lpm_v4);
	struct zt_ioc_val v = { .feed_id = 1, .prefixlen = 32, .action = ZT_IOC_BLOCK };
	struct zt_ioc_state st = { .host_v4_used = 1, .lpm_v4_used = 1 };
	__u32 zero = 0;

	for (int i = 0; i < opt.nioc; i++) {
		__u32 a = htonl((100u << 24 | 64u << 16) + (__u32)i);
		struct zt_ip4_key k = { .prefixlen = 32 };

		memcpy(k.addr, &a, 4);
		if (bpf_map_update_elem(h, &k, &v, BPF_ANY))
			die("ioc_host_v4 update: %s", strerror(errno));
	}
	v.prefixlen = 24;
	for (int i = 0; i < 1500; i++) {
		__u32 a = htonl((100u << 24 | 128u << 16) + ((__u32)i << 8));
		struct zt_ip4_key k = { .prefixlen = 24 };

		memcpy(k.addr, &a, 4);
		if (bpf_map_update_elem(l, &k, &v, BPF_ANY))
			die("ioc_lpm_v4 update: %s", strerror(errno));
	}
	if (bpf_map_update_elem(bpf_map__fd(s->maps.ioc_state), &zero, &st, BPF_ANY))
		die("ioc_state update: %s", strerror(errno));
}

/* One direction of the flow on one CPU: DUO_CALLS calls of DUO_REPEAT runs. */
#define DUO_CALLS 200
#define DUO_REPEAT 2000

struct duo {
	pthread_barrier_t *bar;
	const uint8_t *pkt;
	int fd, cpu, wrong;
	double ns; /* ns/pkt */
};

static void *duo_main(void *arg)
{
	struct duo *t = arg;
	struct __sk_buff ctx = { .ifindex = IFINDEX };
	double sum = 0;
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(t->cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	if (t->bar)
		pthread_barrier_wait(t->bar);
	for (int i = 0; i < DUO_CALLS; i++) {
		LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = t->pkt, .data_size_in = PKT_LEN,
			    .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .repeat = DUO_REPEAT);

		if (bpf_prog_test_run_opts(t->fd, &o) < 0 || o.retval != TC_ACT_OK)
			t->wrong++;
		sum += o.duration;
	}
	t->ns = sum / DUO_CALLS;
	return NULL;
}

/*
 * ns/pkt of the flow's original direction (out, through s->from_pod) and
 * its reply (in, through s->to_pod): alone[] each on its own, both[] at
 * once on CPUs 0 and 1.
 */
static void duo_run(const struct ep_set *s, const uint8_t *out, const uint8_t *in, double *alone,
		    double *both)
{
	struct duo t[2] = { { .pkt = out, .fd = s->from_pod, .cpu = 0 },
			    { .pkt = in, .fd = s->to_pod, .cpu = 1 } };
	pthread_barrier_t bar;
	pthread_t th[2];

	for (int i = 0; i < 2; i++) {
		if (pthread_create(&th[i], NULL, duo_main, &t[i]) != 0)
			die("pthread_create failed");
		pthread_join(th[i], NULL);
		alone[i] = t[i].ns;
	}
	pthread_barrier_init(&bar, NULL, 2);
	for (int i = 0; i < 2; i++) {
		t[i].bar = &bar;
		if (pthread_create(&th[i], NULL, duo_main, &t[i]) != 0)
			die("pthread_create failed");
	}
	for (int i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
		both[i] = t[i].ns;
		bad_verdicts += t[i].wrong;
	}
	pthread_barrier_destroy(&bar);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: bench_tc [-r ROUNDS] [-R REPEAT] [-f FLOWS] [-p POLICY_ENTRIES]\n"
		"  -r  rounds, the median is printed (default 7, at most %d)\n"
		"  -R  repeats per call on the established path (default 200000)\n"
		"  -f  new flows per round (default 8192; rounds x flows at most 250000)\n"
		"  -p  policy entries loaded (default 10000)\n"
		"  -i  threat-intel destination hosts loaded and checked (default 0: check off)\n"
		"Needs root. Runs in a private network namespace; sends nothing.\n",
		MAX_ROUNDS);
	exit(2);
}

int main(int argc, char **argv)
{
	double est[MAX_ROUNDS], rep[MAX_ROUNDS], nw[MAX_ROUNDS], dn[MAX_ROUNDS];
	double e_rep[MAX_ROUNDS], e_one[MAX_ROUNDS], wall[MAX_ROUNDS];
	double t_est[MAX_ROUNDS], t_rep[MAX_ROUNDS], t_nw[MAX_ROUNDS], t_dn[MAX_ROUNDS];
	double d_alone[2][2][MAX_ROUNDS], d_both[2][2][MAX_ROUNDS];
	struct tc_endpoint *s = NULL;
	struct tc_empty *empty = NULL;
	struct ring_buffer *rb = NULL, *trb = NULL;
	struct bpf_object *today;
	struct bpf_map *map;
	struct ep_set cur, tset;
	uint8_t pkt[PKT_LEN], rpkt[PKT_LEN], tpkt[PKT_LEN], trpkt[PKT_LEN], ack[PKT_LEN];
	int c, r, i, fd, efd;
	long events = 0, t_events = 0;
	cpu_set_t cpus;

	while ((c = getopt(argc, argv, "r:R:f:p:i:h")) != -1) {
		switch (c) {
		case 'r':
			opt.rounds = atoi(optarg);
			break;
		case 'R':
			opt.repeat = atoi(optarg);
			break;
		case 'f':
			opt.nflows = atoi(optarg);
			break;
		case 'p':
			opt.npol = atoi(optarg);
			break;
		case 'i':
			opt.nioc = atoi(optarg);
			break;
		default:
			usage();
		}
	}
	if (opt.rounds < 1 || opt.rounds > MAX_ROUNDS || opt.repeat < 1 || opt.nflows < 1 ||
	    (long)opt.rounds * opt.nflows > 250000 || opt.npol < 2 || opt.npol > 1000000)
		usage();

	CPU_ZERO(&cpus);
	CPU_SET(0, &cpus);
	if (sched_setaffinity(0, sizeof(cpus), &cpus) < 0)
		fprintf(stderr, "bench_tc: cannot pin to CPU 0: %s\n", strerror(errno));
	if (unshare(CLONE_NEWNET) < 0)
		die("unshare(CLONE_NEWNET): %s (needs root)", strerror(errno));

	s = tc_endpoint__open();
	if (!s)
		die("cannot open tc_endpoint: %s", strerror(errno));
	bpf_object__for_each_map (map, s->obj)
		bpf_map__set_pin_path(map, NULL);
	bpf_map__set_max_entries(s->maps.conntrack, 262144);
	bpf_map__set_max_entries(s->maps.events, 16 << 20);
	bpf_map__set_max_entries(s->maps.ioc_host_v4, opt.nioc > 1024 ? opt.nioc : 1024);
	bpf_map__set_max_entries(s->maps.ioc_lpm_v4, 4096);
	if (tc_endpoint__load(s))
		die("cannot load tc_endpoint: %s", strerror(errno));
	empty = tc_empty__open_and_load();
	if (!empty)
		die("cannot load tc_empty: %s", strerror(errno));
	rb = ring_buffer__new(bpf_map__fd(s->maps.events), on_event, &events, NULL);
	if (!rb)
		die("ring_buffer__new: %s", strerror(errno));
	cur = (struct ep_set){ .policy = bpf_map__fd(s->maps.policy),
			       .ipcache = bpf_map__fd(s->maps.ipcache_v4),
			       .endpoints = bpf_map__fd(s->maps.endpoints),
			       .isolation = bpf_map__fd(s->maps.pol_isolation),
			       .pol_state = bpf_map__fd(s->maps.pol_state),
			       .from_pod = bpf_program__fd(s->progs.tc_from_pod),
			       .to_pod = bpf_program__fd(s->progs.tc_to_pod) };
	today = load_today(&tset, &trb, &t_events);
	fill_maps(&cur);
	fill_maps(&tset);
	if (opt.nioc)
		fill_ioc(s);
	fd = cur.from_pod;
	efd = bpf_program__fd(empty->progs.tc_empty);
	make_flows(&cur, pkt, rpkt);
	make_flows(&tset, tpkt, trpkt);
	/* The answers of pkt's flow (the peer's ACKs), for the two-CPU rows. */
	mkpkt(ack, "198.18.8.20", "198.18.0.10", ALLOW_PORT, 40000, 0x10);

	for (r = 0; r < opt.rounds; r++) {
		double sum_n = 0, sum_d = 0, sum_e = 0, sum_tn = 0, sum_td = 0, t0;

		wall[r] = 0;
		e_rep[r] = run(efd, pkt, opt.repeat, TC_ACT_OK);
		est[r] = run(fd, pkt, opt.repeat, TC_ACT_OK);
		t_est[r] = run(tset.from_pod, tpkt, opt.repeat, TC_ACT_OK);
		rep[r] = run(fd, rpkt, opt.repeat, TC_ACT_OK);
		t_rep[r] = run(tset.from_pod, trpkt, opt.repeat, TC_ACT_OK);
		{
			double a[2], b[2];

			for (int w = 0; w < 2; w++) {
				duo_run(w ? &tset : &cur, w ? tpkt : pkt, ack, a, b);
				for (int d = 0; d < 2; d++) {
					d_alone[w][d][r] = a[d];
					d_both[w][d][r] = b[d];
				}
			}
		}
		for (i = 0; i < opt.nflows; i++) {
			int k = r * opt.nflows + i;
			/* Distinct tuples: 198.18.8.1-250 x ports 10000-10999. */
			char dst[32];
			uint8_t p[PKT_LEN];

			snprintf(dst, sizeof(dst), "198.18.8.%d", k / 1000 % 250 + 1);
			mkpkt(p, "198.18.0.10", dst, (uint16_t)(10000 + k % 1000), ALLOW_PORT,
			      0x02);
			sum_e += run(efd, p, 1, TC_ACT_OK);
			t0 = now_ns();
			sum_n += run(fd, p, 1, TC_ACT_OK);
			wall[r] += now_ns() - t0;
			sum_tn += run(tset.from_pod, p, 1, TC_ACT_OK);
			/* The same tuple to a port no rule allows: a denied new flow. */
			put16(p + 36, DENY_PORT);
			sum_d += run(fd, p, 1, TC_ACT_SHOT);
			sum_td += run(tset.from_pod, p, 1, TC_ACT_SHOT);
			if (i % 1024 == 1023) {
				ring_buffer__consume(rb);
				ring_buffer__consume(trb);
			}
		}
		ring_buffer__consume(rb);
		ring_buffer__consume(trb);
		t_nw[r] = sum_tn / opt.nflows;
		t_dn[r] = sum_td / opt.nflows;
		e_one[r] = sum_e / opt.nflows;
		nw[r] = sum_n / opt.nflows;
		wall[r] /= opt.nflows;
		dn[r] = sum_d / opt.nflows;
	}

	{
		double me = median(e_rep, opt.rounds), m1 = median(e_one, opt.rounds);
		double mest = median(est, opt.rounds), mrep = median(rep, opt.rounds);
		double mnew = median(nw, opt.rounds), mden = median(dn, opt.rounds);
		double test = median(t_est, opt.rounds), trep = median(t_rep, opt.rounds);
		double tnew = median(t_nw, opt.rounds), tden = median(t_dn, opt.rounds);

		printf("bench_tc: tc_from_pod, %d policy entries, 1002 ipcache entries, "
		       "median of %d rounds (kernel ns/packet)\n",
		       opt.npol, opt.rounds);
		if (opt.nioc)
			printf("  destination IOC check on: %d hosts (hash) + 1500 /24s (trie), "
			       "no flow's destination among them\n",
			       opt.nioc);
		else
			printf("  destination IOC check off (no IOC entries)\n");
		printf("  %-44s %8s %9s %9s\n", "path", "ns/pkt", "x empty", "x today");
		printf("  %-44s %8.1f %9.2f\n", "empty TC program (repeat)", me, 1.0);
		printf("  %-44s %8.1f %9.2f %9.2f\n",
		       "established flow, original direction (repeat)", mest, mest / me,
		       mest / test);
		printf("  %-44s %8.1f %9.2f %9.2f\n", "  today's program", test, test / me, 1.0);
		printf("  %-44s %8.1f %9.2f %9.2f\n", "established flow, reply direction (repeat)",
		       mrep, mrep / me, mrep / trep);
		printf("  %-44s %8.1f %9.2f %9.2f\n", "  today's program", trep, trep / me, 1.0);
		printf("  %-44s %8.1f %9.2f\n", "empty TC program (repeat 1, one call each)", m1,
		       1.0);
		printf("  %-44s %8.1f %9.2f %9.2f\n", "new flow, allowed (repeat 1)", mnew,
		       mnew / m1, mnew / tnew);
		printf("  %-44s %8.1f %9.2f %9.2f\n", "  today's program", tnew, tnew / m1, 1.0);
		printf("  %-44s %8.1f %9.2f %9.2f\n", "new flow, denied (repeat 1)", mden,
		       mden / m1, mden / tden);
		printf("  %-44s %8.1f %9.2f %9.2f\n", "  today's program", tden, tden / m1, 1.0);
		printf("  (today's program: %s,\n"
		       "  the TC endpoint before flow features and the activity stage, on maps\n"
		       "  filled the same way, rounds taking turns)\n",
		       BASE_OBJ);
		printf("\n  established flow, both directions at once: tc_from_pod sending on CPU 0,\n"
		       "  tc_to_pod answering on CPU 1 (%d calls of %d runs each); ns/pkt alone,\n"
		       "  at once, and the ratio (the conntrack entry's lines between the CPUs):\n",
		       DUO_CALLS, DUO_REPEAT);
		printf("  %-18s %10s %8s %6s %10s %8s %6s\n", "program", "out alone", "at once",
		       "ratio", "in alone", "at once", "ratio");
		for (int w = 0; w < 2; w++) {
			double v[2][2];

			for (int d = 0; d < 2; d++) {
				v[d][0] = median(d_alone[w][d], opt.rounds);
				v[d][1] = median(d_both[w][d], opt.rounds);
			}
			printf("  %-18s %10.1f %8.1f %5.2fx %10.1f %8.1f %5.2fx\n",
			       w ? "today's program" : "current", v[0][0], v[0][1],
			       v[0][1] / v[0][0], v[1][0], v[1][1], v[1][1] / v[1][0]);
		}
		printf("  (repeat = %d runs of one packet per call; repeat 1 includes one clock "
		       "read per run, as the empty row beside it)\n",
		       opt.repeat);
		printf("  (a repeat-1 call of the new-flow row takes %.0f ns of wall time: the "
		       "syscall and the skb around the run)\n",
		       median(wall, opt.rounds));
		printf("  events read: %ld (expected %ld)\n", events,
		       2L * opt.rounds * opt.nflows + 2);
	}
	if (events != 2L * opt.rounds * opt.nflows + 2) {
		fprintf(stderr, "bench_tc: events lost or extra\n");
		bad_verdicts++;
	}
	if (bad_verdicts)
		fprintf(stderr, "bench_tc: %d wrong verdicts or counts\n", bad_verdicts);
	ring_buffer__free(rb);
	ring_buffer__free(trb);
	bpf_object__close(today);
	tc_empty__destroy(empty);
	tc_endpoint__destroy(s);
	return bad_verdicts ? 1 : 0;
}
