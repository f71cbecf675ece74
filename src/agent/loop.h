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
/*
 * From another thread: true when the loop thread is parked in epoll_wait
 * (no callback running), and then the caller acts as the loop thread
 * until zt_loop_give_back, which it must call soon (the loop thread waits
 * for it once epoll_wait returns). Never waits: false when the loop is
 * busy (or not running). Not from the loop thread.
 */
bool zt_loop_borrow(struct zt_loop *loop);
void zt_loop_give_back(struct zt_loop *loop);
/*
 * On the loop thread, inside a callback: lends the loop as if parked in
 * epoll_wait (zt_loop_borrow succeeds meanwhile) while the callback does
 * work that touches only state of its own (a long map read), until
 * zt_loop_take_back, which waits for a borrower to give it back. NULL is
 * fine.
 */
void zt_loop_lend(struct zt_loop *loop);
void zt_loop_take_back(struct zt_loop *loop);
/*
 * fn(ctx, -1, 0) on the loop thread after every callback of a batch, so
 * work other threads queued waits for one callback, not for the batch.
 * It must be cheap when there is nothing to do. NULL removes it.
 */
void zt_loop_set_between(struct zt_loop *loop, zt_loop_fn fn, void *ctx);
/* Frees the loop and the timers it owns; NULL is fine. */
void zt_loop_stop(struct zt_loop *loop);

#endif
