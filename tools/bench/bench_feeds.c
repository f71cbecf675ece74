// SPDX-License-Identifier: GPL-2.0-only
/*
 * bench_feeds: a threat-intel feed swapped into the kernel by the daemon's
 * own code (src/feeds/apply.c over src/guard/blocklist.c), and what the
 * packet path sees meanwhile.
 *
 * A private network namespace and bpffs; the XDP guard attached in generic
 * mode to a veth there (so BPF_PROG_TEST_RUN calls stay in the dispatcher,
 * as in bench_xdp), the TC program loaded. Then:
 *   1. a feed of N entries is applied to an empty agent;
 *   2. it is replaced by a version sharing half of them (N/2 added, N/2
 *      released), with a thread running the XDP pass path on packets from
 *      random unlisted sources, each call STALL_REPEAT packets, and the
 *      worst call is compared with an idle run of the same thread.
 * Each application is timed from the submission of the parsed version to
 * its last kernel write, in steps of the daemon's 30 ms budget with
 * no sleep between them (src/feeds/feeds.c STEP_AT_ONCE); the longest step is what the daemon's
 * loop would have waited. Parse time is bench feedparse's business.
 *
 *   bench_feeds [-n ENTRIES] [-6] [-q]
 *     (default 1000000 IPv4 hosts; -6: IPv6; -q: no packet-path thread, for
 *     profiling the applier alone with perf)
 * Needs root.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent/config.h"
#include "agent/log.h"
#include "feeds/apply.h"
#include "feeds/feed.h"
#include "guard/blocklist.h"
#include "guard/datapath.h"
#include "tc_endpoint.skel.h"
#include "xdp_guard.skel.h"

#define STEP_NS (30ULL * 1000000ULL)
#define GAP_US 0 /* the daemon steps again at once (src/feeds/feeds.c STEP_AT_ONCE) */
#define WAIT_GAP_US 1000
#define STALL_REPEAT 8
#define NPKT 4096
#define CALLS_MAX (4u << 20)

static double now_s(void)
{
	return (double)zt_now_mono_ns() / 1e9;
}

static void die(const char *m)
{
	fprintf(stderr, "bench_feeds: %s\n", m);
	exit(1);
}

struct pkt {
	unsigned char b[64];
};

struct call {
	float at; /* s since the reader started */
	float us; /* wall time of the call */
};

struct reader {
	int fd;
	const struct pkt *pk;
	volatile int stop;
	double t0;
	struct call *c;
	size_t n;
	int wrong;
};

static void *reader_main(void *arg)
{
	struct reader *rd = arg;

	while (!rd->stop && rd->n < CALLS_MAX) {
		const struct pkt *p = &rd->pk[rd->n % NPKT];
		LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = p->b, .data_size_in = sizeof(p->b),
			    .repeat = STALL_REPEAT);
		double t0 = now_s();

		if (bpf_prog_test_run_opts(rd->fd, &o) < 0 || o.retval != XDP_PASS)
			rd->wrong++;
		rd->c[rd->n].at = (float)(t0 - rd->t0);
		rd->c[rd->n++].us = (float)((now_s() - t0) * 1e6);
	}
	return NULL;
}

static int cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;

	return x < y ? -1 : x > y;
}

/* p50, p99.9 and max of the calls that started in [from, to). */
static float report(const char *what, const struct reader *rd, double from, double to)
{
	float *us = calloc(rd->n ? rd->n : 1, sizeof(*us)), max = 0;
	size_t n = 0;

	for (size_t i = 0; i < rd->n; i++)
		if (rd->c[i].at >= from && rd->c[i].at < to)
			us[n++] = rd->c[i].us;
	if (n) {
		qsort(us, n, sizeof(*us), cmp_float);
		max = us[n - 1];
		printf("  %-22s %6.2f s %8zu calls  p50 %6.1f us  p99.9 %7.1f us  max %8.1f us\n",
		       what, to - from, n, us[n / 2], us[n * 999 / 1000], max);
	}
	free(us);
	return max;
}

/* Ethernet + IPv4 + UDP from a random 198.19.x.y (never listed) to the node. */
static void mk_pkts(struct pkt *p)
{
	for (int i = 0; i < NPKT; i++) {
		unsigned char *b = p[i].b;
		uint32_t r;

		memset(b, 0, sizeof(p[i].b));
		getrandom(&r, sizeof(r), 0);
		b[12] = 0x08;
		b[14] = 0x45;
		b[17] = 50;
		b[22] = 64;
		b[23] = 17;
		b[26] = 198;
		b[27] = 19;
		b[28] = (unsigned char)(r >> 8);
		b[29] = (unsigned char)r;
		b[30] = 198;
		b[31] = 18;
		b[33] = 2;
		b[35] = 53;
		b[37] = 53;
		b[39] = 30;
	}
}

/* The last version's parse (text to a sorted result), as the daemon's worker does it. */
static double parse_s;

static struct zt_feed_result *hosts(uint32_t from, uint32_t n, bool v6)
{
	struct zt_feed_result *r = calloc(1, sizeof(*r));
	char *text = malloc((size_t)n * 40 + 1), *p = text;
	struct zt_feed_parse_opts o = { .feed = "bench" };

	if (!r || !text || zt_feed_result_init(r, "bench"))
		die("out of memory");
	for (uint32_t i = from; i < from + n; i++) {
		uint32_t a = (100u << 24 | 64u << 16) + i;

		if (v6)
			p += sprintf(p, "2001:db8:%x:%x::1\n", a >> 16, a & 0xffff);
		else
			p += sprintf(p, "%u.%u.%u.%u\n", a >> 24, (a >> 16) & 255, (a >> 8) & 255,
				     a & 255);
	}
	parse_s = now_s();
	if (zt_feed_parse(ZT_FEED_CIDR, text, (size_t)(p - text), r, &o) ||
	    zt_feed_finish(r, 1000000))
		die("parse failed");
	parse_s = now_s() - parse_s;
	free(text);
	return r;
}

struct outcome {
	double s;
	double user_s, sys_s; /* the applying thread's CPU, in user space and in the kernel */
	double proc_s; /* the process's CPU (with -q: the applier and its helper threads) */
	double parse_s; /* parsing the text before it (the worker's share of the latency) */
	struct zt_feed_apply_report rep;
};

static void on_done(void *ctx, const struct zt_feed_apply_report *rep)
{
	((struct outcome *)ctx)->rep = *rep;
}

/* Applies r as the daemon does: steps of STEP_NS with a GAP_US gap. */
static double apply(struct zt_feed_apply *a, struct zt_feed_result *r, struct outcome *out)
{
	uint8_t d[32] = { 0 };
	struct rusage u0, u1, p0, p1;
	double t0 = now_s();

	out->parse_s = parse_s;
	getrusage(RUSAGE_SELF, &p0);
	getrusage(RUSAGE_THREAD, &u0);
	zt_feed_apply_submit(a, 0, r, d, 0);
	while (zt_feed_apply_step(a, STEP_NS))
		if (zt_feed_apply_waiting(a) || GAP_US)
			usleep(zt_feed_apply_waiting(a) ? WAIT_GAP_US : GAP_US);
	out->s = now_s() - t0;
	getrusage(RUSAGE_THREAD, &u1);
	getrusage(RUSAGE_SELF, &p1);
	out->proc_s = (double)(p1.ru_utime.tv_sec - p0.ru_utime.tv_sec + p1.ru_stime.tv_sec -
			       p0.ru_stime.tv_sec) +
		      (double)(p1.ru_utime.tv_usec - p0.ru_utime.tv_usec + p1.ru_stime.tv_usec -
			       p0.ru_stime.tv_usec) /
			      1e6;
	out->user_s = (double)(u1.ru_utime.tv_sec - u0.ru_utime.tv_sec) +
		      (double)(u1.ru_utime.tv_usec - u0.ru_utime.tv_usec) / 1e6;
	out->sys_s = (double)(u1.ru_stime.tv_sec - u0.ru_stime.tv_sec) +
		     (double)(u1.ru_stime.tv_usec - u0.ru_stime.tv_usec) / 1e6;
	return out->s;
}

static void print_rep(const char *what, const struct outcome *o)
{
	printf("%s: %.2f s (%u steps, %.1f ms of work, longest step %.1f ms); added %zu, removed %zu, unchanged %zu%s\n",
	       what, o->s, o->rep.steps, (double)o->rep.work_ns / 1e6,
	       (double)o->rep.longest_step_ns / 1e6, o->rep.src.added, o->rep.src.removed,
	       o->rep.src.unchanged, o->rep.ok ? "" : " (REFUSED)");
	printf("    new version wholly in force after %.2f s (the rest: releasing the old one's own)\n",
	       (double)o->rep.in_force_ns / 1e9);
	printf("    work: adds %.1f ms, releases %.1f ms; CPU %.1f ms of it (user %.0f ms, kernel %.0f ms); most CPU in a step %.1f ms; process CPU %.0f ms\n",
	       (double)o->rep.add_ns / 1e6, (double)o->rep.del_ns / 1e6,
	       (double)o->rep.cpu_ns / 1e6, o->user_s * 1e3, o->sys_s * 1e3,
	       (double)o->rep.longest_step_cpu_ns / 1e6, o->proc_s * 1e3);
	printf("    content to kernel: parse %.2f s + apply: new version in force after %.2f s, complete after %.2f s\n",
	       o->parse_s, o->parse_s + (double)o->rep.in_force_ns / 1e9, o->parse_s + o->s);
}

int main(int argc, char **argv)
{
	char dir[] = "/tmp/zt-benchfeeds-XXXXXX", err[512];
	struct zt_config cfg;
	struct zt_datapath *dp = NULL;
	struct zt_blocklist *bl = NULL;
	struct zt_feed_apply *a = NULL;
	struct zt_feed_apply_maps m;
	struct outcome out = { 0 };
	struct reader rd = { 0 };
	struct pkt *pk;
	uint32_t n = 1000000;
	bool v6 = false, quiet = false;
	pthread_t t;
	double t_sub, t_end;
	float idle, busy;
	int c;

	while ((c = getopt(argc, argv, "n:6qh")) != -1) {
		if (c == 'n')
			n = (uint32_t)strtoul(optarg, NULL, 10);
		else if (c == '6')
			v6 = true;
		else if (c == 'q')
			quiet = true;
		else {
			printf("Usage: bench_feeds [-n ENTRIES] [-6] [-q]\n");
			return c == 'h' ? 0 : 2;
		}
	}
	if (unshare(CLONE_NEWNET) < 0 || system("ip link add ztb0 type veth peer name ztb1") ||
	    system("ip link set ztb0 up") || system("ip link set ztb1 up"))
		die("cannot make a private network namespace with a veth (root needed)");
	if (!mkdtemp(dir) || mount("bpf", dir, "bpf", 0, "mode=0700") < 0)
		die("cannot mount a bpffs");
	zt_log_set_level(ZT_LOG_ERROR);
	zt_config_defaults(&cfg);
	snprintf(cfg.bpffs, sizeof(cfg.bpffs), "%s/ztagent", dir);
	snprintf(cfg.xdp.interfaces[0], sizeof(cfg.xdp.interfaces[0]), "ztb0");
	cfg.xdp.n_interfaces = 1;
	cfg.xdp.mode = ZT_XDP_GENERIC;
	cfg.xdp.blocklist_max = 2 * n + 1024;
	cfg.xdp.ringbuf_bytes = 1 << 16;
	cfg.policy.conntrack_max = 1024;
	cfg.feeds[0].direction = ZT_FEED_SOURCE;
	snprintf(cfg.feeds[0].name, sizeof(cfg.feeds[0].name), "bench");
	if (zt_datapath_init(&dp, &cfg, err, sizeof(err)) < 0 ||
	    zt_blocklist_init(&bl, dp, err, sizeof(err)) < 0)
		die(err);
	m = (struct zt_feed_apply_maps){
		.bl = bl, .ioc_host = { -1, -1 }, .ioc_lpm = { -1, -1 }, .ioc_state = -1
	};
	if (zt_feed_apply_init(&a, &m, cfg.feeds, 1, on_done, &out) < 0)
		die("applier");
	pk = calloc(NPKT, sizeof(*pk));
	rd.c = calloc(CALLS_MAX, sizeof(*rd.c));
	if (!pk || !rd.c)
		die("out of memory");
	mk_pkts(pk);
	rd.pk = pk;
	rd.fd = bpf_program__fd(dp->xdp->progs.xdp_guard);

	printf("Feed of %u %s hosts through the daemon's applier (steps of 30 ms, %d us apart; text generated and parsed first)\n",
	       n, v6 ? "IPv6" : "IPv4", GAP_US);
	apply(a, hosts(0, n, v6), &out);
	print_rep("  first version, into an empty agent", &out);
	if (getenv("BENCH_FEEDS_FIRST_ONLY"))
		return 0;

	/* The swap, with the pass path running beside it. */
	{
		struct zt_feed_result *next = hosts(n / 2, n, v6);

		rd.t0 = now_s();
		rd.stop = quiet;
		if (pthread_create(&t, NULL, reader_main, &rd))
			die("thread");
		usleep(1500000);
		t_sub = now_s() - rd.t0;
		apply(a, next, &out);
		t_end = now_s() - rd.t0;
		usleep(500000); /* freed elements go after an RCU grace period: keep watching */
		rd.stop = 1;
		pthread_join(t, NULL);
	}
	print_rep("  swap to a version sharing half", &out);
	printf("\nXDP pass path meanwhile (another thread, %d packets per BPF_PROG_TEST_RUN call):\n",
	       STALL_REPEAT);
	idle = report("idle", &rd, 0, t_sub);
	busy = report("during the swap", &rd, t_sub, t_end);
	{
		float after = report("0.5 s after", &rd, t_end, t_end + 0.5);

		busy = after > busy ? after : busy;
	}
	printf("  worst call: %.1f us idle, %.1f us during the swap (%.2fx)%s\n", idle, busy,
	       idle > 0 ? busy / idle : 0, rd.wrong ? "; WRONG VERDICTS" : "");
	zt_feed_apply_stop(a);
	zt_blocklist_stop(bl);
	zt_datapath_detach(&cfg, err, sizeof(err));
	zt_datapath_stop(dp);
	umount(dir);
	rmdir(dir);
	free(pk);
	free(rd.c);
	return rd.wrong ? 1 : 0;
}
