// SPDX-License-Identifier: GPL-2.0-only
/*
 * BPF test: the ring-buffer consumer (src/guard/events.c) runs at nice
 * ZT_EVENTS_NICE, on its own thread only (the caller's stays as it was),
 * over a real BPF ring buffer, and stops cleanly; a deferred handler that
 * is held up (a lock another thread holds) does not hold up the records
 * behind it, and gets every record, in order, even past its queue's size.
 */
#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <cmocka.h>

#include <bpf/bpf.h>

#include "guard/events.h"
#include "bench_events.skel.h"

/* The nice of thread tid (field 19 of its stat), or 100 when unreadable. */
static int thread_nice(long tid)
{
	char path[64], buf[1024], *p;
	FILE *f;
	size_t n;
	int field = 2, nice = 100;

	snprintf(path, sizeof(path), "/proc/self/task/%ld/stat", tid);
	f = fopen(path, "re");
	if (!f)
		return 100;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')'); /* after the command name, which may hold spaces */
	if (!p)
		return 100;
	for (p = strtok(p + 1, " "); p; p = strtok(NULL, " "))
		if (++field == 19) {
			nice = atoi(p);
			break;
		}
	return nice;
}

/*
 * The nice of the consumer thread (named zt-events); 100 when there is none
 * or several. By name: a sanitizer's runtime may have threads of its own.
 */
static int other_thread_nice(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	long self = syscall(SYS_gettid), other = 0;
	int n = 0;

	if (!d)
		return 100;
	while ((e = readdir(d))) {
		char path[300], comm[32] = "";
		FILE *f;

		if (e->d_name[0] == '.' || atol(e->d_name) == self)
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		f = fopen(path, "re");
		if (!f)
			continue;
		if (!fgets(comm, sizeof(comm), f))
			comm[0] = '\0';
		fclose(f);
		if (strncmp(comm, "zt-events", 9) == 0) {
			other = atol(e->d_name);
			n++;
		}
	}
	closedir(d);
	return n == 1 ? thread_nice(other) : 100;
}

static void test_consumer_priority(void **state)
{
	int fd = bpf_map_create(BPF_MAP_TYPE_RINGBUF, "zt_test_rb", 0, 0, 16 * 4096, NULL);
	struct zt_events *ev = NULL;
	int before = getpriority(PRIO_PROCESS, 0), nice = 100;

	assert_true(fd >= 0);
	assert_int_equal(zt_events_init(&ev, fd), 0);
	assert_int_equal(zt_events_start(ev), 0);
	for (int i = 0; i < 200 && nice != ZT_EVENTS_NICE; i++) {
		usleep(5000);
		nice = other_thread_nice();
	}
	assert_int_equal(nice, ZT_EVENTS_NICE);
	/* The caller's thread (the daemon's loop) keeps its own. */
	assert_int_equal(thread_nice(syscall(SYS_gettid)), before);
	zt_events_stop(ev);
	close(fd);
}

static uint64_t mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

/* A deferred XDP-drop handler that waits (at most 2 s) for `release` on its first record. */
struct slow {
	atomic_bool release, entered;
	atomic_uint_fast64_t n, out_of_order, last;
	atomic_bool activity_seen;
};

static void slow_drop(void *ctx, const void *rec, size_t len)
{
	struct slow *s = ctx;
	const struct zt_ev_xdp_drop *e = rec;
	uint64_t t0 = mono_ms();

	assert_int_equal(len, sizeof(*e));
	if (!atomic_exchange(&s->entered, true))
		while (!atomic_load(&s->release) && mono_ms() - t0 < 2000)
			usleep(1000);
	if (e->hdr.ts_ns != atomic_load(&s->last) + 1)
		atomic_fetch_add(&s->out_of_order, 1);
	atomic_store(&s->last, e->hdr.ts_ns);
	atomic_fetch_add(&s->n, 1);
}

static void on_activity(void *ctx, const void *rec, size_t len)
{
	(void)rec;
	(void)len;
	atomic_store(&((struct slow *)ctx)->activity_seen, true);
}

static void drop_rec(struct zt_ev_xdp_drop *e, uint64_t seq)
{
	memset(e, 0, sizeof(*e));
	e->hdr.type = ZT_EV_XDP_DROP;
	e->hdr.len = sizeof(*e);
	e->hdr.ts_ns = seq; /* the order, for the handler */
	e->family = 4;
	e->represents = 1;
}

static void wait_for(struct slow *s, uint64_t n)
{
	for (int i = 0; i < 1000 && atomic_load(&s->n) < n; i++)
		usleep(5000);
}

/*
 * XDP-drop records whose handler is stuck (as behind the forensics lock a
 * capture flush holds) and a detector's record after them: the detector's
 * handler runs at once, and the stuck one gets every drop later, in order.
 */
static void test_deferred_does_not_hold_up(void **state)
{
	int fd = bpf_map_create(BPF_MAP_TYPE_RINGBUF, "zt_test_rb", 0, 0, 16 * 4096, NULL);
	struct zt_events *ev = NULL;
	struct zt_ev_xdp_drop d;
	struct zt_ev_activity a;
	struct zt_events_stats st;
	static struct slow s;
	uint64_t t0, took;

	(void)state;
	memset(&s, 0, sizeof(s));
	assert_true(fd >= 0);
	assert_int_equal(zt_events_init(&ev, fd), 0);
	assert_int_equal(zt_events_on_deferred(ev, ZT_EV_XDP_DROP, slow_drop, &s), 0);
	assert_int_equal(zt_events_on(ev, ZT_EV_SRC_ACTIVITY, on_activity, &s), 0);
	assert_int_equal(zt_events_start(ev), 0);
	memset(&a, 0, sizeof(a));
	a.hdr.type = ZT_EV_SRC_ACTIVITY;
	a.hdr.len = sizeof(a);
	a.family = 4;
	t0 = mono_ms();
	for (uint64_t i = 1; i <= 100; i++) {
		drop_rec(&d, i);
		zt_events_dispatch(ev, &d, sizeof(d));
	}
	zt_events_dispatch(ev, &a, sizeof(a));
	took = mono_ms() - t0;
	printf("# 100 drops (their handler stuck) and a detector's record dispatched in %llu ms\n",
	       (unsigned long long)took);
	assert_true(atomic_load(&s.activity_seen));
	assert_true(took < 500);
	atomic_store(&s.release, true);
	wait_for(&s, 100);
	assert_int_equal(atomic_load(&s.n), 100);
	assert_int_equal(atomic_load(&s.out_of_order), 0);
	zt_events_get_stats(ev, &st);
	assert_int_equal(st.deferred, 100);
	zt_events_stop(ev);
	close(fd);
}

/* More records than the queue holds while its thread is stuck: the consumer waits, none is lost. */
static void test_deferred_full_loses_nothing(void **state)
{
	int fd = bpf_map_create(BPF_MAP_TYPE_RINGBUF, "zt_test_rb", 0, 0, 16 * 4096, NULL);
	struct zt_events *ev = NULL;
	struct zt_ev_xdp_drop d;
	struct zt_events_stats st;
	static struct slow s;
	const uint64_t n = 20000; /* the queue holds 16384 */

	(void)state;
	memset(&s, 0, sizeof(s));
	assert_true(fd >= 0);
	assert_int_equal(zt_events_init(&ev, fd), 0);
	assert_int_equal(zt_events_on_deferred(ev, ZT_EV_XDP_DROP, slow_drop, &s), 0);
	assert_int_equal(zt_events_start(ev), 0);
	/* The handler is stuck for its 2 s on the first record: the queue fills. */
	for (uint64_t i = 1; i <= n; i++) {
		drop_rec(&d, i);
		zt_events_dispatch(ev, &d, sizeof(d));
	}
	wait_for(&s, n);
	assert_int_equal(atomic_load(&s.n), n);
	assert_int_equal(atomic_load(&s.out_of_order), 0);
	zt_events_get_stats(ev, &st);
	printf("# %llu records, queue high %llu, consumer waited %llu times (%.0f ms)\n",
	       (unsigned long long)st.deferred, (unsigned long long)st.deferred_high,
	       (unsigned long long)st.deferred_full_waits, (double)st.deferred_full_wait_ns / 1e6);
	assert_int_equal(st.deferred, n);
	assert_true(st.deferred_full_waits >= 1);
	zt_events_stop(ev);
	close(fd);
}

/*
 * Work a consumer's handler leaves for later (a new incident's capture file,
 * as the engine's run_fresh does) runs on the bookkeeping thread: the
 * records behind it are read at once, even with that work stuck.
 */
struct later_state {
	atomic_bool release, job_done, job_on_consumer, job_data_bad;
	atomic_uint_fast64_t n, consumer_tid, last_ms;
};

static void stuck_job(void *ctx, const void *data, size_t len)
{
	struct later_state *s = ctx;
	uint64_t t0 = mono_ms();

	/* No cmocka assert off the test's thread: flags, checked there. */
	if (len != 8 || memcmp(data, "capture", 8))
		atomic_store(&s->job_data_bad, true);
	if ((uint64_t)syscall(SYS_gettid) == atomic_load(&s->consumer_tid))
		atomic_store(&s->job_on_consumer, true);
	while (!atomic_load(&s->release) && mono_ms() - t0 < 2000)
		usleep(1000);
	atomic_store(&s->job_done, true);
}

static void drop_then_later(void *ctx, const void *rec, size_t len)
{
	struct later_state *s = ctx;

	(void)rec;
	(void)len;
	if (atomic_fetch_add(&s->n, 1) == 0) {
		atomic_store(&s->consumer_tid, (uint64_t)syscall(SYS_gettid));
		zt_events_later(stuck_job, s, "capture", 8);
	}
	atomic_store(&s->last_ms, mono_ms());
}

static void nothing(void *ctx, const void *rec, size_t len)
{
	(void)ctx;
	(void)rec;
	(void)len;
}

static void test_later_from_consumer(void **state)
{
	struct bench_events *sk = bench_events__open();
	struct zt_events *ev = NULL;
	static struct later_state s;
	struct {
		uint32_t n, sources;
		uint64_t made, lost;
	} a = { .n = 100, .sources = 16 };
	LIBBPF_OPTS(bpf_test_run_opts, o, .ctx_in = &a, .ctx_size_in = sizeof(a));
	uint64_t t0;

	(void)state;
	memset(&s, 0, sizeof(s));
	assert_non_null(sk);
	bpf_map__set_max_entries(sk->maps.ring, 1 << 20);
	assert_int_equal(bench_events__load(sk), 0);
	assert_int_equal(zt_events_init(&ev, bpf_map__fd(sk->maps.ring)), 0);
	assert_int_equal(zt_events_on(ev, ZT_EV_XDP_DROP, drop_then_later, &s), 0);
	/* A deferred handler of any type gives the events their bookkeeping thread. */
	assert_int_equal(zt_events_on_deferred(ev, ZT_EV_CAPTURE, nothing, NULL), 0);
	assert_int_equal(zt_events_start(ev), 0);
	t0 = mono_ms();
	assert_int_equal(bpf_prog_test_run_opts(bpf_program__fd(sk->progs.produce), &o), 0);
	assert_int_equal(a.made, 100);
	for (int i = 0; i < 400 && atomic_load(&s.n) < 100; i++)
		usleep(1000);
	printf("# %llu of 100 records read in %llu ms, the first one's later work stuck\n",
	       (unsigned long long)atomic_load(&s.n),
	       (unsigned long long)(atomic_load(&s.last_ms) ? atomic_load(&s.last_ms) - t0 : 0));
	assert_int_equal(atomic_load(&s.n), 100);
	assert_true(atomic_load(&s.last_ms) - t0 < 500);
	assert_false(atomic_load(&s.job_done));
	atomic_store(&s.release, true);
	for (int i = 0; i < 400 && !atomic_load(&s.job_done); i++)
		usleep(5000);
	assert_true(atomic_load(&s.job_done));
	assert_false(atomic_load(&s.job_on_consumer));
	assert_false(atomic_load(&s.job_data_bad));
	zt_events_stop(ev);
	bench_events__destroy(sk);
	/* Off a consumer thread, the work runs at once. */
	memset(&s, 0, sizeof(s));
	atomic_store(&s.release, true);
	zt_events_later(stuck_job, &s, "capture", 8);
	assert_true(atomic_load(&s.job_done));
}

/* An XDP-drop handler that costs 1 ms of CPU (a record type made expensive). */
static void burn_1ms(void *ctx, const void *rec, size_t len)
{
	uint64_t t0 = mono_ms();

	(void)rec;
	(void)len;
	while (mono_ms() - t0 < 1)
		;
	atomic_fetch_add((atomic_uint_fast64_t *)ctx, 1);
}

/*
 * The consumer under SCHED_FIFO (zt_events_set_realtime), on the same CPU
 * as a nice-0 thread (this one), and a flood of records that keeps it busy
 * 1.5-3 s: it goes back to nice after half of a 100 ms window busy, so the
 * other thread waits as it would behind nice -10 (under SCHED_FIFO alone
 * only the kernel's RT throttling let it run: 951 ms without the CPU);
 * every record is still read.
 */
static void test_realtime_flood_cannot_starve(void **state)
{
	struct bench_events *sk = bench_events__open();
	struct zt_events *ev = NULL;
	struct zt_events_stats st;
	static atomic_uint_fast64_t n;
	struct {
		uint32_t n, sources;
		uint64_t made, lost;
	} a = { .n = 3000, .sources = 16 };
	LIBBPF_OPTS(bpf_test_run_opts, o, .ctx_in = &a, .ctx_size_in = sizeof(a));
	cpu_set_t one, all;
	uint64_t t0, last, gap = 0;

	(void)state;
	atomic_store(&n, 0);
	assert_non_null(sk);
	bpf_map__set_max_entries(sk->maps.ring, 1 << 20);
	assert_int_equal(bench_events__load(sk), 0);
	assert_int_equal(sched_getaffinity(0, sizeof(all), &all), 0);
	CPU_ZERO(&one);
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &all)) {
			CPU_SET(c, &one);
			break;
		}
	/* This thread and the consumer (it inherits the mask) on one CPU. */
	assert_int_equal(sched_setaffinity(0, sizeof(one), &one), 0);
	assert_int_equal(zt_events_init(&ev, bpf_map__fd(sk->maps.ring)), 0);
	assert_int_equal(zt_events_on(ev, ZT_EV_XDP_DROP, burn_1ms, &n), 0);
	zt_events_set_realtime(ev, 1);
	assert_int_equal(zt_events_start(ev), 0);
	for (int i = 0; i < 200; i++) {
		zt_events_get_stats(ev, &st);
		if (st.realtime)
			break;
		usleep(5000);
	}
	if (!st.realtime)
		print_message("  the consumer is not under SCHED_FIFO: CAP_SYS_NICE or an RT "
			      "budget is missing\n");
	assert_int_equal(st.realtime, 1);
	assert_int_equal(bpf_prog_test_run_opts(bpf_program__fd(sk->progs.produce), &o), 0);
	assert_int_equal(a.made, 3000);
	/* This thread's longest time off the CPU while the records are worked off. */
	t0 = last = mono_ms();
	while (atomic_load(&n) < 3000 && mono_ms() - t0 < 20000) {
		uint64_t now = mono_ms();

		if (now - last > gap)
			gap = now - last;
		last = now;
	}
	zt_events_get_stats(ev, &st);
	printf("# 3000 records of up to 1 ms each under SCHED_FIFO on a shared CPU: read in %llu ms; "
	       "the nice-0 thread's longest wait %llu ms; %llu pause(s)\n",
	       (unsigned long long)(mono_ms() - t0), (unsigned long long)gap,
	       (unsigned long long)st.realtime_demotions);
	zt_events_stop(ev);
	bench_events__destroy(sk);
	assert_int_equal(sched_setaffinity(0, sizeof(all), &all), 0);
	assert_int_equal(atomic_load(&n), 3000);
	assert_true(st.realtime_demotions >= 1);
	/* SCHED_FIFO throughout: 950 ms (RT throttling); nice -10 alone: 120-490 ms measured. */
	assert_true(gap < 700);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_consumer_priority),
		cmocka_unit_test(test_deferred_does_not_hold_up),
		cmocka_unit_test(test_deferred_full_loses_nothing),
		cmocka_unit_test(test_later_from_consumer),
		cmocka_unit_test(test_realtime_flood_cannot_starve),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
