// SPDX-License-Identifier: GPL-2.0-only
/* Blocks written on the loop thread, queued from others (see actions.h). */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "agent/util.h"
#include "respond/actions.h"

#define QCAP 1024

struct zt_actions {
	struct zt_loop *loop;
	pthread_t loop_thread;
	zt_block_write_fn write;
	zt_block_done_fn done;
	void *ctx;
	int efd;
	pthread_mutex_t lock;
	struct zt_block_action q[QCAP];
	size_t head, n; /* n: written under lock, read without it by on_between */
	struct zt_actions_stats st;
};

static void execute(struct zt_actions *a, struct zt_block_action *b, uint8_t path)
{
	char err[256] = "";
	int r;
	uint64_t now;

	b->path = path;
	b->write_ns = zt_now_mono_ns();
	r = a->write(a->ctx, b, err, sizeof(err));
	now = zt_now_mono_ns();

	pthread_mutex_lock(&a->lock);
	if (r)
		a->st.failed++;
	else
		a->st.written++;
	pthread_mutex_unlock(&a->lock);
	if (a->done)
		a->done(a->ctx, b, r, now > b->decided_ns ? now - b->decided_ns : 0, err);
}

static void drain(struct zt_actions *a)
{
	for (;;) {
		struct zt_block_action b;

		pthread_mutex_lock(&a->lock);
		if (!a->n) {
			pthread_mutex_unlock(&a->lock);
			return;
		}
		b = a->q[a->head];
		a->head = (a->head + 1) % QCAP;
		__atomic_store_n(&a->n, a->n - 1, __ATOMIC_RELAXED);
		pthread_mutex_unlock(&a->lock);
		execute(a, &b, ZT_BP_QUEUED);
	}
}

static void on_wake(void *ctx, int fd, uint32_t events)
{
	struct zt_actions *a = ctx;
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return;
	drain(a);
}

/* After each loop callback: what other threads queued meanwhile, without waiting for the eventfd. */
static void on_between(void *ctx, int fd, uint32_t events)
{
	struct zt_actions *a = ctx;

	if (__atomic_load_n(&a->n, __ATOMIC_RELAXED))
		drain(a);
}

int zt_actions_new(struct zt_loop *loop, zt_block_write_fn write, zt_block_done_fn done, void *ctx,
		   struct zt_actions **out)
{
	struct zt_actions *a;
	int r;

	*out = NULL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->loop = loop;
	a->loop_thread = pthread_self();
	a->write = write;
	a->done = done;
	a->ctx = ctx;
	a->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (a->efd < 0) {
		r = -errno;
		free(a);
		return r;
	}
	r = loop ? zt_loop_add(loop, a->efd, EPOLLIN, on_wake, a) : 0;
	if (r) {
		close(a->efd);
		free(a);
		return r;
	}
	pthread_mutex_init(&a->lock, NULL);
	zt_loop_set_between(loop, on_between, a);
	*out = a;
	return 0;
}

void zt_actions_free(struct zt_actions *a)
{
	if (!a)
		return;
	drain(a);
	if (a->loop) {
		zt_loop_set_between(a->loop, NULL, NULL);
		zt_loop_del(a->loop, a->efd);
	}
	close(a->efd);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

int zt_actions_block(struct zt_actions *a, const struct zt_block_action *b)
{
	struct zt_block_action c = *b;
	uint64_t one = 1;
	bool full;

	if (pthread_equal(pthread_self(), a->loop_thread)) {
		execute(a, &c, ZT_BP_LOOP);
		return 0;
	}
	/*
	 * The loop idle: written here and now, instead of waking the loop
	 * thread and waiting for the scheduler to run it. Blocks queued
	 * earlier go first (their order is the decisions').
	 */
	if (zt_loop_borrow(a->loop)) {
		drain(a);
		pthread_mutex_lock(&a->lock);
		a->st.borrowed++;
		pthread_mutex_unlock(&a->lock);
		execute(a, &c, ZT_BP_BORROWED);
		zt_loop_give_back(a->loop);
		return 0;
	}
	pthread_mutex_lock(&a->lock);
	full = a->n >= QCAP;
	if (full) {
		a->st.overflow++;
	} else {
		a->q[(a->head + a->n) % QCAP] = *b;
		__atomic_store_n(&a->n, a->n + 1, __ATOMIC_RELAXED);
		a->st.queued++;
	}
	pthread_mutex_unlock(&a->lock);
	if (full) {
		if (a->done)
			a->done(a->ctx, b, -ENOBUFS, 0, "the block queue is full");
		return -ENOBUFS;
	}
	if (write(a->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		return -errno;
	return 0;
}

void zt_actions_run_queued(struct zt_actions *a)
{
	if (a && pthread_equal(pthread_self(), a->loop_thread))
		drain(a);
}

void zt_actions_get_stats(struct zt_actions *a, struct zt_actions_stats *st)
{
	pthread_mutex_lock(&a->lock);
	*st = a->st;
	pthread_mutex_unlock(&a->lock);
}
