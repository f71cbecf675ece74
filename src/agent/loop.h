/* SPDX-License-Identifier: GPL-2.0-only */
/* The daemon's control loop: epoll over fds with callbacks, plus timers. */
#ifndef ZT_LOOP_H
#define ZT_LOOP_H

#include <stdbool.h>
#include <stdint.h>

struct zt_loop;

/* Called with the fd and the epoll events (EPOLLIN, EPOLLOUT, EPOLLHUP, ...). */
typedef void (*zt_loop_fn)(void *ctx, int fd, uint32_t events);

int zt_loop_init(struct zt_loop **loop);
/* Watches fd (not owned). At most one registration per fd. */
int zt_loop_add(struct zt_loop *loop, int fd, uint32_t events, zt_loop_fn fn, void *ctx);
int zt_loop_mod(struct zt_loop *loop, int fd, uint32_t events);
/* Safe to call from inside a callback, also for other fds. */
int zt_loop_del(struct zt_loop *loop, int fd);
/* A periodic timer (timerfd, CLOCK_MONOTONIC); returns its fd (owned by the loop). */
int zt_loop_add_timer(struct zt_loop *loop, uint64_t interval_ns, zt_loop_fn fn, void *ctx);
/* One epoll_wait (timeout_ms, -1 = forever) and its callbacks; returns the events handled or -errno. */
int zt_loop_run_once(struct zt_loop *loop, int timeout_ms);
/* Runs until zt_loop_quit(); returns 0, or -errno if epoll_wait fails. */
int zt_loop_run(struct zt_loop *loop);
void zt_loop_quit(struct zt_loop *loop);
/*
 * The longest single callback, in ns, since the previous call (which it
 * resets): how long the loop was held at most. Any thread; NULL gives 0.
 */
uint64_t zt_loop_take_step_max(struct zt_loop *loop);
/* Frees the loop and the timers it owns; NULL is fine. */
void zt_loop_stop(struct zt_loop *loop);

#endif
