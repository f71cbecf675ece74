// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests: how a decided block reaches the map (src/respond/actions.c,
 * with a real loop thread from src/agent/loop.c).
 *  - The loop busy in a long callback: a block decided on another thread
 *    is written by that thread before zt_actions_block returns, while the
 *    callback still runs (it used to be queued until the callback ended).
 *  - A block decided on the loop thread is written there, labelled so.
 *  - A failed write: its -errno comes back, to the caller and to done.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <cmocka.h>

#include "agent/loop.h"
#include "agent/util.h"
#include "respond/actions.h"

#define MS 1000000ULL
#define HOLD_MS 400

struct fx {
	struct zt_loop *loop;
	struct zt_actions *act;
	pthread_t loop_thr;
	int stop; /* atomic */
	int ready; /* atomic: the actions exist */
	int write_result; /* what the writer returns */
	pthread_t write_thr;
	uint8_t path;
	int writes; /* atomic */
	int in_callback; /* atomic: the loop's long callback is running */
	int overlap; /* atomic: a write ran while it did */
	int done_result;
	uint64_t done_latency;
	int loop_block_r; /* zt_actions_block's result inside a loop callback */
	int hold_fd, decide_fd; /* eventfds of the two callbacks below */
};

static struct fx F;

static int w_write(void *ctx, const struct zt_block_action *a, char *err, size_t errlen)
{
	if (__atomic_load_n(&F.in_callback, __ATOMIC_SEQ_CST))
		__atomic_store_n(&F.overlap, 1, __ATOMIC_SEQ_CST);
	F.write_thr = pthread_self();
	F.path = a->path;
	__atomic_add_fetch(&F.writes, 1, __ATOMIC_SEQ_CST);
	if (F.write_result)
		snprintf(err, errlen, "the map said no");
	return F.write_result;
}

static void w_done(void *ctx, const struct zt_block_action *a, int result, uint64_t latency_ns,
		   const char *err)
{
	F.done_result = result;
	F.done_latency = latency_ns;
}

/* Holds the loop thread for HOLD_MS (a long callback: a sweep, an API call, a feed step). */
static void hold(void *ctx, int fd, uint32_t events)
{
	struct timespec d = { 0, HOLD_MS * 1000000L };
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0)
		return;
	__atomic_store_n(&F.in_callback, 1, __ATOMIC_SEQ_CST);
	nanosleep(&d, NULL);
	__atomic_store_n(&F.in_callback, 0, __ATOMIC_SEQ_CST);
}

static void block(struct zt_block_action *b)
{
	memset(b, 0, sizeof(*b));
	b->family = 4;
	b->addr[0] = 198;
	b->addr[1] = 18;
	b->decided_ns = zt_now_mono_ns();
}

/* A block decided by a loop callback (the conntrack sweep's, the flow records'). */
static void decide_on_loop(void *ctx, int fd, uint32_t events)
{
	struct zt_block_action b;
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0)
		return;
	block(&b);
	__atomic_store_n(&F.loop_block_r, zt_actions_block(F.act, &b), __ATOMIC_SEQ_CST);
}

/* The loop's thread: the loop's state is its own, so everything is registered here. */
static void *loop_main(void *arg)
{
	assert_int_equal(zt_loop_init(&F.loop), 0);
	assert_int_equal(zt_actions_new(w_write, w_done, NULL, &F.act), 0);
	F.hold_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	F.decide_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	assert_true(F.hold_fd >= 0 && F.decide_fd >= 0);
	assert_int_equal(zt_loop_add(F.loop, F.hold_fd, EPOLLIN, hold, NULL), 0);
	assert_int_equal(zt_loop_add(F.loop, F.decide_fd, EPOLLIN, decide_on_loop, NULL), 0);
	__atomic_store_n(&F.ready, 1, __ATOMIC_SEQ_CST);
	while (!__atomic_load_n(&F.stop, __ATOMIC_SEQ_CST))
		zt_loop_run_once(F.loop, 20);
	return NULL;
}

static int setup(void **state)
{
	memset(&F, 0, sizeof(F));
	F.loop_block_r = 1;
	if (pthread_create(&F.loop_thr, NULL, loop_main, NULL))
		return -1;
	while (!__atomic_load_n(&F.ready, __ATOMIC_SEQ_CST))
		usleep(1000);
	return 0;
}

static int teardown(void **state)
{
	__atomic_store_n(&F.stop, 1, __ATOMIC_SEQ_CST);
	pthread_join(F.loop_thr, NULL);
	zt_actions_free(F.act);
	zt_loop_stop(F.loop);
	close(F.hold_fd);
	close(F.decide_fd);
	return 0;
}

static void fire(int fd)
{
	uint64_t one = 1;

	assert_int_equal(write(fd, &one, sizeof(one)), sizeof(one));
}

static void test_busy_loop_written_by_deciding_thread(void **state)
{
	struct zt_block_action b;
	struct zt_actions_stats st;
	uint64_t t0, dt;

	fire(F.hold_fd);
	while (!__atomic_load_n(&F.in_callback, __ATOMIC_SEQ_CST))
		usleep(100);
	usleep(20 * 1000);
	/* The loop is HOLD_MS - 20 ms from free: the block must not wait for it. */
	block(&b);
	t0 = zt_now_mono_ns();
	assert_int_equal(zt_actions_block(F.act, &b), 0);
	dt = zt_now_mono_ns() - t0;
	assert_int_equal(__atomic_load_n(&F.writes, __ATOMIC_SEQ_CST), 1);
	assert_true(pthread_equal(F.write_thr, pthread_self()));
	assert_int_equal(F.path, ZT_BP_DIRECT);
	/* Written while the callback still ran, well inside the 10 ms budget. */
	assert_true(__atomic_load_n(&F.overlap, __ATOMIC_SEQ_CST));
	assert_true(__atomic_load_n(&F.in_callback, __ATOMIC_SEQ_CST));
	if (dt > 10 * MS)
		fail_msg("zt_actions_block took %.1f ms with the loop busy", (double)dt / MS);
	assert_int_equal(F.done_result, 0);
	assert_true(F.done_latency < 10 * MS);
	zt_actions_get_stats(F.act, &st);
	assert_int_equal(st.written, 1);
	assert_int_equal(st.direct, 1);
	while (__atomic_load_n(&F.in_callback, __ATOMIC_SEQ_CST))
		usleep(1000);
}

static void test_loop_thread_block_labelled_loop(void **state)
{
	struct zt_actions_stats st;

	fire(F.decide_fd);
	for (int i = 0; i < 200 && __atomic_load_n(&F.loop_block_r, __ATOMIC_SEQ_CST) == 1; i++)
		usleep(5 * 1000);
	assert_int_equal(__atomic_load_n(&F.loop_block_r, __ATOMIC_SEQ_CST), 0);
	assert_true(pthread_equal(F.write_thr, F.loop_thr));
	assert_int_equal(F.path, ZT_BP_LOOP);
	zt_actions_get_stats(F.act, &st);
	assert_int_equal(st.written, 1);
	assert_int_equal(st.direct, 0);
}

static void test_failed_write_reported(void **state)
{
	struct zt_block_action b;
	struct zt_actions_stats st;

	F.write_result = -ENOSPC;
	block(&b);
	assert_int_equal(zt_actions_block(F.act, &b), -ENOSPC);
	assert_int_equal(F.done_result, -ENOSPC);
	zt_actions_get_stats(F.act, &st);
	assert_int_equal(st.failed, 1);
	assert_int_equal(st.written, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_busy_loop_written_by_deciding_thread, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_loop_thread_block_labelled_loop, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_failed_write_reported, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
