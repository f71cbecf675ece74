// SPDX-License-Identifier: GPL-2.0-only
/*
 * The control loop: epoll over fds, one callback each, and timerfd timers.
 *
 * Each epoll event carries a pointer to its registration. A callback may
 * delete any registration, its own included, so a deleted one is not freed
 * while a batch is being dispatched: it is marked dead and parked, and an
 * event for it later in the same batch is skipped. Its fd number may be
 * reused by a new registration meanwhile; the stale event still points to
 * the dead one, so it never reaches the newcomer.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "agent/loop.h"

#define MAX_EVENTS 64

struct reg {
	int fd;
	bool timer; /* the loop owns the fd */
	bool dead;
	zt_loop_fn fn;
	void *ctx;
	struct reg *next;
};

struct zt_loop {
	int epfd;
	bool quit;
	bool dispatching;
	struct reg *regs; /* live registrations */
	struct reg *dead; /* deleted during the current batch, freed after it */
	uint64_t step_max_ns; /* atomic: the longest callback since zt_loop_take_step_max */
};

int zt_loop_init(struct zt_loop **out)
{
	struct zt_loop *l = calloc(1, sizeof(*l));

	if (!l)
		return -ENOMEM;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		int r = -errno;

		free(l);
		return r;
	}
	*out = l;
	return 0;
}

static struct reg *find(struct zt_loop *l, int fd)
{
	for (struct reg *r = l->regs; r; r = r->next)
		if (r->fd == fd)
			return r;
	return NULL;
}

static int add(struct zt_loop *l, int fd, uint32_t events, zt_loop_fn fn, void *ctx, bool timer)
{
	struct epoll_event ev = { .events = events };
	struct reg *r;

	if (!l || fd < 0 || !fn)
		return -EINVAL;
	if (find(l, fd))
		return -EEXIST;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->fd = fd;
	r->timer = timer;
	r->fn = fn;
	r->ctx = ctx;
	ev.data.ptr = r;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int e = -errno;

		free(r);
		return e;
	}
	r->next = l->regs;
	l->regs = r;
	return 0;
}

int zt_loop_add(struct zt_loop *l, int fd, uint32_t events, zt_loop_fn fn, void *ctx)
{
	return add(l, fd, events, fn, ctx, false);
}

int zt_loop_mod(struct zt_loop *l, int fd, uint32_t events)
{
	struct epoll_event ev = { .events = events };
	struct reg *r = l ? find(l, fd) : NULL;

	if (!r)
		return -ENOENT;
	ev.data.ptr = r;
	return epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
}

int zt_loop_del(struct zt_loop *l, int fd)
{
	struct reg **pp, *r;

	if (!l)
		return -EINVAL;
	for (pp = &l->regs; (r = *pp); pp = &r->next)
		if (r->fd == fd)
			break;
	if (!r)
		return -ENOENT;
	*pp = r->next;
	/* Fails harmlessly (EBADF) when the caller closed the fd already. */
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
	if (r->timer)
		close(r->fd);
	r->dead = true;
	if (l->dispatching) {
		r->next = l->dead;
		l->dead = r;
	} else {
		free(r);
	}
	return 0;
}

int zt_loop_add_timer(struct zt_loop *l, uint64_t interval_ns, zt_loop_fn fn, void *ctx)
{
	struct itimerspec its = {
		.it_interval = { .tv_sec = (time_t)(interval_ns / 1000000000ULL),
				 .tv_nsec = (long)(interval_ns % 1000000000ULL) },
	};
	int fd, r;

	if (!l || !interval_ns || !fn)
		return -EINVAL;
	its.it_value = its.it_interval;
	fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (timerfd_settime(fd, 0, &its, NULL) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	r = add(l, fd, EPOLLIN, fn, ctx, true);
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

uint64_t zt_loop_take_step_max(struct zt_loop *l)
{
	return l ? __atomic_exchange_n(&l->step_max_ns, 0, __ATOMIC_RELAXED) : 0;
}

static void dispatch(struct zt_loop *l, struct reg *r, uint32_t events)
{
	uint64_t t0 = mono_ns(), dt;

	if (r->timer) {
		uint64_t expirations;

		/* Drained here, so a callback that does not read cannot make the loop spin. */
		if (read(r->fd, &expirations, sizeof(expirations)) < 0 && errno == EAGAIN)
			return;
	}
	r->fn(r->ctx, r->fd, events);
	dt = mono_ns() - t0;
	/* Only the loop thread raises it; a scrape may reset it in between (one step uncounted). */
	if (dt > __atomic_load_n(&l->step_max_ns, __ATOMIC_RELAXED))
		__atomic_store_n(&l->step_max_ns, dt, __ATOMIC_RELAXED);
}

int zt_loop_run_once(struct zt_loop *l, int timeout_ms)
{
	struct epoll_event evs[MAX_EVENTS];
	int n, e;

	if (!l)
		return -EINVAL;
	if (l->dispatching)
		return -EBUSY; /* not from inside a callback */
	n = epoll_wait(l->epfd, evs, MAX_EVENTS, timeout_ms);
	e = errno;
	if (n < 0)
		return e == EINTR ? 0 : -e;
	l->dispatching = true;
	for (int i = 0; i < n; i++) {
		struct reg *r = evs[i].data.ptr;

		if (!r->dead)
			dispatch(l, r, evs[i].events);
	}
	l->dispatching = false;
	while (l->dead) {
		struct reg *r = l->dead;

		l->dead = r->next;
		free(r);
	}
	return n;
}

int zt_loop_run(struct zt_loop *l)
{
	if (!l)
		return -EINVAL;
	l->quit = false;
	while (!l->quit) {
		int r = zt_loop_run_once(l, -1);

		if (r < 0)
			return r;
	}
	return 0;
}

void zt_loop_quit(struct zt_loop *l)
{
	if (l)
		l->quit = true;
}

void zt_loop_stop(struct zt_loop *l)
{
	if (!l)
		return;
	while (l->regs)
		zt_loop_del(l, l->regs->fd);
	close(l->epfd);
	free(l);
}
