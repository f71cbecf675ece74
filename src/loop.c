// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "loop.h"

#define MAX_EVENTS 64

struct reg {
	int fd;
	bool timer; /* the loop owns the fd */
	zt_loop_fn fn;
	void *ctx;
	struct reg *next;
};

struct zt_loop {
	int epfd;
	bool quit;
	struct reg *regs;
	/* Registrations removed while a batch is dispatched: freed after it. */
	struct reg *dead;
	unsigned long generation;
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
	struct reg *r = find(l, fd);
	struct epoll_event ev = { .events = events };

	if (!r)
		return -ENOENT;
	ev.data.ptr = r;
	return epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
}

int zt_loop_del(struct zt_loop *l, int fd)
{
	struct reg **pp, *r;

	for (pp = &l->regs; (r = *pp); pp = &r->next)
		if (r->fd == fd)
			break;
	if (!r)
		return -ENOENT;
	*pp = r->next;
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
	if (r->timer)
		close(r->fd);
	/* An event for it may still be pending in this batch: mark, free later. */
	r->fn = NULL;
	r->next = l->dead;
	l->dead = r;
	return 0;
}

static void on_timer(struct reg *r, uint32_t events)
{
	uint64_t expirations;

	/* Drained here, so a callback that does not read cannot spin. */
	if (read(r->fd, &expirations, sizeof(expirations)) < 0 && errno == EAGAIN)
		return;
	r->fn(r->ctx, r->fd, events);
}

int zt_loop_add_timer(struct zt_loop *l, uint64_t interval_ns, zt_loop_fn fn, void *ctx)
{
	struct itimerspec its = {
		.it_interval = { .tv_sec = interval_ns / 1000000000ULL,
				 .tv_nsec = interval_ns % 1000000000ULL },
	};
	int fd, r;

	if (!interval_ns)
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

static void free_dead(struct zt_loop *l)
{
	while (l->dead) {
		struct reg *r = l->dead;

		l->dead = r->next;
		free(r);
	}
}

int zt_loop_run_once(struct zt_loop *l, int timeout_ms)
{
	struct epoll_event evs[MAX_EVENTS];
	int n = epoll_wait(l->epfd, evs, MAX_EVENTS, timeout_ms);

	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		struct reg *r = evs[i].data.ptr;

		if (!r->fn)
			continue; /* deleted earlier in this batch */
		if (r->timer)
			on_timer(r, evs[i].events);
		else
			r->fn(r->ctx, r->fd, evs[i].events);
	}
	free_dead(l);
	return n;
}

int zt_loop_run(struct zt_loop *l)
{
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
	l->quit = true;
}

void zt_loop_stop(struct zt_loop *l)
{
	if (!l)
		return;
	while (l->regs)
		zt_loop_del(l, l->regs->fd);
	free_dead(l);
	close(l->epfd);
	free(l);
}
