// SPDX-License-Identifier: GPL-2.0-only
/*
 * bench_events: how many ring-buffer records per second the daemon's
 * consumer (src/guard/events.c, one thread) takes, on one core.
 *
 * A BPF_PROG_TYPE_SYSCALL program (bpf/bench_events.bpf.c) writes XDP-drop
 * records into a ring buffer with bpf_loop, run through BPF_PROG_TEST_RUN
 * from a thread pinned to one CPU; the consumer thread is pinned to the
 * other. Two handlers:
 *   - bare:   the dispatch only (a counter);
 *   - daemon: what the daemon does with a drop record: the rate-limited
 *             log line (zt_events_log_xdp_drop) and the drop aggregation
 *             into flow rows (zt_dropagg_add), over 4096 sources.
 * Two measurements each:
 *   - drain:  the ring is filled first (2M records, 256 MiB ring), then the
 *             consumer is started and timed until it has read them all:
 *             the consumer's own rate, whatever the producer's;
 *   - stream: producer and consumer run together for 20M records on a
 *             4 MiB ring (the daemon's default); records the producer
 *             finds no room for are counted as lost, as in the XDP guard.
 * The figure against the target (1M/s) is the drain rate of the daemon
 * handler. Nothing is attached or pinned; the log lines go to /dev/null.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bench_events.skel.h"
#include "guard/dropagg.h"
#include "guard/events.h"
#include "agent/util.h"

struct bench_args {
	uint32_t n;
	uint32_t sources;
	uint64_t made;
	uint64_t lost;
};

static uint64_t counted;

static void h_bare(void *ctx, const void *rec, size_t len)
{
	counted++;
}

static void h_daemon(void *ctx, const void *rec, size_t len)
{
	zt_events_log_xdp_drop(ctx, rec, len);
	zt_dropagg_add(ctx, rec);
}

static void pin_cpu(int cpu)
{
	cpu_set_t s;

	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	sched_setaffinity(0, sizeof(s), &s);
}

static int produce(int prog_fd, uint32_t n, uint64_t *made, uint64_t *lost)
{
	struct bench_args a = { .n = n, .sources = 4096 };
	/* A syscall program's context is copied back into ctx_in. */
	LIBBPF_OPTS(bpf_test_run_opts, o, .ctx_in = &a, .ctx_size_in = sizeof(a));
	int r = bpf_prog_test_run_opts(prog_fd, &o);

	if (r < 0) {
		r = -errno;
		fprintf(stderr, "bench_events: test run: %s\n", strerror(-r));
		return r;
	}
	*made += a.made;
	*lost += a.lost;
	return 0;
}

static struct bench_events *load(uint32_t ring_bytes)
{
	struct bench_events *s = bench_events__open();

	if (!s)
		return NULL;
	bpf_map__set_max_entries(s->maps.ring, ring_bytes);
	if (bench_events__load(s)) {
		fprintf(stderr, "bench_events: cannot load the producer\n");
		bench_events__destroy(s);
		return NULL;
	}
	return s;
}

static struct zt_events *consumer(struct bench_events *s, bool daemon, struct zt_dropagg *agg)
{
	struct zt_events *ev = NULL;

	if (zt_events_init(&ev, bpf_map__fd(s->maps.ring)) < 0)
		return NULL;
	zt_events_on(ev, ZT_EV_XDP_DROP, daemon ? h_daemon : h_bare, agg);
	/* The thread inherits this CPU; the producer moves to the other. */
	pin_cpu(0);
	zt_events_start(ev);
	pin_cpu(1);
	return ev;
}

static uint64_t received(struct zt_events *ev)
{
	struct zt_events_stats st;

	zt_events_get_stats(ev, &st);
	return st.received;
}

/* Returns records/s read by the consumer from a prefilled ring, 0 on failure. */
static double drain(bool daemon)
{
	const uint32_t n = 2000000;
	struct bench_events *s = load(256u << 20);
	struct zt_dropagg *agg = NULL;
	struct zt_events *ev;
	uint64_t made = 0, lost = 0, t0, t1;

	if (!s || zt_dropagg_new(0, 0, "bench", &agg) < 0)
		return 0;
	pin_cpu(1);
	for (uint32_t done = 0; done < n; done += 500000)
		if (produce(bpf_program__fd(s->progs.produce), 500000, &made, &lost) < 0)
			return 0;
	if (lost || made != n) {
		fprintf(stderr, "bench_events: prefill wrote %llu of %u records\n",
			(unsigned long long)made, n);
		return 0;
	}
	t0 = zt_now_mono_ns();
	ev = consumer(s, daemon, agg);
	if (!ev)
		return 0;
	while (received(ev) < n)
		usleep(200);
	t1 = zt_now_mono_ns();
	zt_events_stop(ev);
	zt_dropagg_free(agg);
	bench_events__destroy(s);
	return (double)n / ((double)(t1 - t0) / 1e9);
}

/* Producer and consumer together; prints and returns consumed records/s. */
static double stream(bool daemon, uint64_t *lost_out, double *produced_rate)
{
	const uint64_t total = 20000000;
	struct bench_events *s = load(4u << 20);
	struct zt_dropagg *agg = NULL;
	struct zt_events *ev;
	uint64_t made = 0, lost = 0, t0, t1;

	if (!s || zt_dropagg_new(0, 0, "bench", &agg) < 0)
		return 0;
	ev = consumer(s, daemon, agg);
	if (!ev)
		return 0;
	t0 = zt_now_mono_ns();
	while (made + lost < total)
		if (produce(bpf_program__fd(s->progs.produce), 65536, &made, &lost) < 0)
			return 0;
	t1 = zt_now_mono_ns();
	while (received(ev) < made)
		usleep(200);
	zt_events_stop(ev);
	zt_dropagg_free(agg);
	bench_events__destroy(s);
	*lost_out = lost;
	*produced_rate = (double)(made + lost) / ((double)(t1 - t0) / 1e9);
	return (double)made / ((double)(t1 - t0) / 1e9);
}

int main(int argc, char **argv)
{
	int devnull = open("/dev/null", O_WRONLY), saved = dup(2);
	double d_bare, d_daemon, s_bare, s_daemon, p_bare, p_daemon;
	uint64_t l_bare = 0, l_daemon = 0;

	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		fprintf(stderr, "bench_events: one CPU only: producer and consumer share it\n");
	/* The daemon handler's log lines (20 a second) are not the point. */
	if (!getenv("BENCH_EVENTS_VERBOSE"))
		dup2(devnull, 2);
	d_bare = drain(false);
	d_daemon = drain(true);
	s_bare = stream(false, &l_bare, &p_bare);
	s_daemon = stream(true, &l_daemon, &p_daemon);
	dup2(saved, 2);
	if (!d_bare || !d_daemon || !s_bare || !s_daemon) {
		fprintf(stderr, "bench_events: a run failed (is bpf_loop there? kernel >= 5.17)\n");
		return 1;
	}
	printf("ring-buffer consumer (src/guard/events.c), one thread on one CPU, XDP drop records:\n");
	printf("  drain of 2M prefilled records:  bare %6.2f M/s   daemon handler %6.2f M/s\n",
	       d_bare / 1e6, d_daemon / 1e6);
	printf("  stream of 20M, 4 MiB ring:      bare %6.2f M/s   daemon handler %6.2f M/s"
	       "  (producer offered %.2f / %.2f M/s; lost %.1f%% / %.1f%%)\n",
	       s_bare / 1e6, s_daemon / 1e6, p_bare / 1e6, p_daemon / 1e6,
	       100.0 * (double)l_bare / 2e7, 100.0 * (double)l_daemon / 2e7);
	printf("  daemon handler vs target 1M/s: %.2fx (drain)\n", d_daemon / 1e6);
	return 0;
}
