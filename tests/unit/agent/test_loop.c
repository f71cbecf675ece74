// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests: the loop's longest-step measure (zt_loop_take_step_max), what
 * ztagent_loop_step_max_seconds reports: a callback that holds the loop
 * shows as the maximum, and reading it starts a new interval.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <cmocka.h>

#include "agent/loop.h"

static int calls;

/* Holds the loop for at least ms milliseconds (its eventfd is read so it fires once). */
static void hold(void *ctx, int fd, uint32_t events)
{
	struct timespec d = { 0, (long)(*(int *)ctx) * 1000000L };
	uint64_t v;

	(void)events;
	if (read(fd, &v, sizeof(v)) < 0)
		return;
	calls++;
	nanosleep(&d, NULL);
}

static void test_step_max(void **state)
{
	struct zt_loop *l = NULL;
	int ms_long = 300, ms_short = 1;
	int a = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), b = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	uint64_t one = 1, m;

	(void)state;
	assert_true(a >= 0 && b >= 0);
	assert_int_equal(zt_loop_init(&l), 0);
	assert_int_equal(zt_loop_take_step_max(l), 0);
	assert_int_equal(zt_loop_add(l, a, EPOLLIN, hold, &ms_long), 0);
	assert_int_equal(zt_loop_add(l, b, EPOLLIN, hold, &ms_short), 0);
	assert_int_equal(write(a, &one, sizeof(one)), sizeof(one));
	assert_int_equal(write(b, &one, sizeof(one)), sizeof(one));
	while (calls < 2)
		assert_true(zt_loop_run_once(l, 1000) > 0);
	/* The longer of the two callbacks, not their sum or the last one. */
	m = zt_loop_take_step_max(l);
	assert_true(m >= 300ULL * 1000000ULL);
	/* Read: a new interval starts; the short callback alone is its maximum. */
	assert_int_equal(zt_loop_take_step_max(l), 0);
	assert_int_equal(write(b, &one, sizeof(one)), sizeof(one));
	while (calls < 3)
		assert_true(zt_loop_run_once(l, 1000) > 0);
	m = zt_loop_take_step_max(l);
	/* (a 1 ms sleep well under the 300 ms one, even on a loaded machine) */
	assert_true(m >= 1000000ULL && m < 300ULL * 1000000ULL);
	assert_int_equal(zt_loop_take_step_max(NULL), 0);
	zt_loop_del(l, a);
	zt_loop_del(l, b);
	zt_loop_stop(l);
	close(a);
	close(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_step_max),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
