// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests: how a block decided off the loop thread reaches the map
 * (src/respond/actions.c with a real loop, src/agent/loop.c's lending).
 *  - The loop idle in epoll_wait: the deciding thread writes the block
 *    itself, before zt_actions_block returns, without waking the loop.
 *  - The loop busy in a callback: the block is queued and written by the
 *    loop right after that callback, not after the rest of its batch.
 *  - While a thread has the loop, the loop thread runs no callback.
 *  - A callback that lends the loop (zt_loop_lend) lets the block through
 *    at once, and gets the loop back after it (zt_loop_take_back).
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

struct fx {
	struct zt_loop *loop;
	struct zt_actions *act;
	pthread_t loop_thr;
	int stop; /* atomic */
	int ready; /* atomic: the actions exist */
	/* what happened, in order (under mu) */
	pthread_mutex_t mu;
	char order[16][16];
	int n_order;
	pthread_t write_thr;
	uint8_t path;
	int writes; /* atomic */
	int in_callback; /* atomic: a callback of the loop is running */
	int overlap; /* atomic: a write ran while a callback did */
};

static struct fx F;

static void note(const char *what)
{
	pthread_mutex_lock(&F.mu);
	if (F.n_order < 16)
		snprintf(F.order[F.n_order++], sizeof(F.order[0]), "%s", what);
	pthread_mutex_unlock(&F.mu);
}

static int w_write(void *ctx, const struct zt_block_action *a, char *err, size_t errlen)
{
	if (__atomic_load_n(&F.in_callback, __ATOMIC_SEQ_CST))
		__atomic_store_n(&F.overlap, 1, __ATOMIC_SEQ_CST);
	F.write_thr = pthread_self();
	F.path = a->path;
	note("write");
	__atomic_add_fetch(&F.writes, 1, __ATOMIC_SEQ_CST);
	return 0;
}

/* Holds the loop for *ctx ms. */
static void hold(void *ctx, int fd, uint32_t events)
{
	struct timespec d = { 0, (long)(*(int *)ctx) * 1000000L };
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0)
		return;
	__atomic_store_n(&F.in_callback, 1, __ATOMIC_SEQ_CST);
	note(*(int *)ctx == 300 ? "hold-a" : "hold-b");
	nanosleep(&d, NULL);
	__atomic_store_n(&F.in_callback, 0, __ATOMIC_SEQ_CST);
}

static void *loop_main(void *arg)
{
	assert_int_equal(zt_loop_init(&F.loop), 0);
	assert_int_equal(zt_actions_new(F.loop, w_write, NULL, NULL, &F.act), 0);
	__atomic_store_n(&F.ready, 1, __ATOMIC_SEQ_CST);
	while (!__atomic_load_n(&F.stop, __ATOMIC_SEQ_CST))
		zt_loop_run_once(F.loop, 20);
	zt_actions_free(F.act);
	return NULL;
}

static int setup(void **state)
{
	memset(&F, 0, sizeof(F));
	pthread_mutex_init(&F.mu, NULL);
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
	zt_loop_stop(F.loop);
	pthread_mutex_destroy(&F.mu);
	return 0;
}

static void block(struct zt_block_action *b)
{
	memset(b, 0, sizeof(*b));
	b->family = 4;
	b->addr[0] = 198;
	b->addr[1] = 18;
	b->decided_ns = zt_now_mono_ns();
}

/* Until the loop thread is in epoll_wait (it parks there every 20 ms at most). */
/* Borrows the loop once it is parked in epoll_wait (within 1 s); the caller gives it back. */
static void borrow_parked(void)
{
	for (int i = 0; i < 2000; i++) {
		if (zt_loop_borrow(F.loop))
			return;
		usleep(500);
	}
	fail_msg("the loop never parked");
}

static void wait_parked(void)
{
	borrow_parked();
	zt_loop_give_back(F.loop);
}

static void test_idle_loop_written_by_caller(void **state)
{
	struct zt_block_action b;
	struct zt_actions_stats st;

	/* Parked at the time of the call (it polls every 20 ms: again if it just woke). */
	for (int i = 0; i < 20; i++) {
		wait_parked();
		block(&b);
		assert_int_equal(zt_actions_block(F.act, &b), 0);
		zt_actions_get_stats(F.act, &st);
		if (st.borrowed)
			break;
	}
	zt_actions_get_stats(F.act, &st);
	assert_true(st.borrowed >= 1);
	/* The last write: on this thread, done when zt_actions_block returned. */
	assert_true(pthread_equal(F.write_thr, pthread_self()));
	assert_int_equal(F.path, ZT_BP_BORROWED);
}

static void test_busy_loop_written_after_its_callback(void **state)
{
	int a = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), b = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	int ms_a = 300, ms_b = 200;
	uint64_t one = 1;
	struct zt_block_action blk;

	assert_true(a >= 0 && b >= 0);
	/* Registered from this thread while the loop is parked: borrow it. */
	borrow_parked();
	assert_int_equal(zt_loop_add(F.loop, a, EPOLLIN, hold, &ms_a), 0);
	assert_int_equal(zt_loop_add(F.loop, b, EPOLLIN, hold, &ms_b), 0);
	/* Both ready before the loop's next epoll_wait: one batch. */
	assert_int_equal(write(a, &one, sizeof(one)), sizeof(one));
	assert_int_equal(write(b, &one, sizeof(one)), sizeof(one));
	F.n_order = 0;
	zt_loop_give_back(F.loop);
	while (!__atomic_load_n(&F.in_callback, __ATOMIC_SEQ_CST))
		usleep(100);
	usleep(20 * 1000);
	block(&blk);
	/* The loop is in a callback: queued, not written here. */
	assert_false(zt_loop_borrow(F.loop));
	assert_int_equal(zt_actions_block(F.act, &blk), 0);
	assert_int_equal(__atomic_load_n(&F.writes, __ATOMIC_SEQ_CST), 0);
	for (int i = 0; i < 200 && F.n_order < 3; i++)
		usleep(10 * 1000);
	pthread_mutex_lock(&F.mu);
	assert_int_equal(F.n_order, 3);
	/* Between the batch's two callbacks, whichever came first. */
	assert_string_equal(F.order[1], "write");
	pthread_mutex_unlock(&F.mu);
	assert_true(pthread_equal(F.write_thr, F.loop_thr));
	assert_int_equal(F.path, ZT_BP_QUEUED);
	assert_false(__atomic_load_n(&F.overlap, __ATOMIC_SEQ_CST));
	borrow_parked();
	zt_loop_del(F.loop, a);
	zt_loop_del(F.loop, b);
	zt_loop_give_back(F.loop);
	close(a);
	close(b);
}

static void test_borrowed_loop_runs_nothing(void **state)
{
	int a = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	int ms = 1;
	uint64_t one = 1;

	assert_true(a >= 0);
	/* Not running yet, or from a loop that is not parked: refused. */
	assert_false(zt_loop_borrow(NULL));
	borrow_parked();
	assert_int_equal(zt_loop_add(F.loop, a, EPOLLIN, hold, &ms), 0);
	/* A second borrower waits for nobody: refused while the loop is lent. */
	assert_false(zt_loop_borrow(F.loop));
	F.n_order = 0;
	assert_int_equal(write(a, &one, sizeof(one)), sizeof(one));
	/* epoll_wait returns (the fd is ready) but the loop thread waits for the loop back. */
	usleep(100 * 1000);
	assert_int_equal(F.n_order, 0);
	zt_loop_give_back(F.loop);
	for (int i = 0; i < 200 && F.n_order < 1; i++)
		usleep(5 * 1000);
	assert_int_equal(F.n_order, 1);
	borrow_parked();
	zt_loop_del(F.loop, a);
	zt_loop_give_back(F.loop);
	close(a);
}

/* A callback that lends the loop for its own work (the flow export's table read). */
static void lend_hold(void *ctx, int fd, uint32_t events)
{
	struct timespec d = { 0, 200 * 1000000L };
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0)
		return;
	zt_loop_lend(F.loop);
	note("lent");
	nanosleep(&d, NULL);
	zt_loop_take_back(F.loop);
	note("taken-back");
}

static void test_lent_loop_written_by_caller(void **state)
{
	int a = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	uint64_t one = 1;
	struct zt_block_action blk;

	assert_true(a >= 0);
	borrow_parked();
	assert_int_equal(zt_loop_add(F.loop, a, EPOLLIN, lend_hold, NULL), 0);
	F.n_order = 0;
	assert_int_equal(write(a, &one, sizeof(one)), sizeof(one));
	zt_loop_give_back(F.loop);
	for (int i = 0; i < 200; i++) {
		pthread_mutex_lock(&F.mu);
		if (F.n_order >= 1) {
			pthread_mutex_unlock(&F.mu);
			break;
		}
		pthread_mutex_unlock(&F.mu);
		usleep(1000);
	}
	/* Inside the callback, lent: written here, at once. */
	block(&blk);
	assert_int_equal(zt_actions_block(F.act, &blk), 0);
	assert_int_equal(__atomic_load_n(&F.writes, __ATOMIC_SEQ_CST), 1);
	assert_int_equal(F.path, ZT_BP_BORROWED);
	for (int i = 0; i < 200 && F.n_order < 3; i++)
		usleep(5 * 1000);
	pthread_mutex_lock(&F.mu);
	assert_int_equal(F.n_order, 3);
	assert_string_equal(F.order[1], "write");
	assert_string_equal(F.order[2], "taken-back");
	pthread_mutex_unlock(&F.mu);
	borrow_parked();
	zt_loop_del(F.loop, a);
	zt_loop_give_back(F.loop);
	close(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_idle_loop_written_by_caller, setup, teardown),
		cmocka_unit_test_setup_teardown(test_busy_loop_written_after_its_callback, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_borrowed_loop_runs_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lent_loop_written_by_caller, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
