/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Fetching feeds without blocking the daemon: one worker thread for all
 * feeds does the transfers (libcurl for https/http, plain reads for files
 * and directories), the conditional requests, retries and the on-disk copy
 * of the last good content; completed fetches reach the caller's thread
 * through an eventfd and zt_feed_fetcher_dispatch().
 *
 *   zt_feed_fetcher_init(&f, &opts, err, sizeof(err));
 *   zt_loop_add(loop, zt_feed_fetcher_fd(f), EPOLLIN, on_feeds, f);
 *     on_feeds(): zt_feed_fetcher_dispatch(f) -> opts.done(ctx, &done) per completion
 *   zt_feed_fetcher_refresh(f, -1, false);  (ztctl feeds refresh)
 *   zt_feed_fetcher_stop(f);
 *
 * At start, each feed's last good copy in <state_dir>/feeds/<name>.cache
 * (when it was fetched from the same url in the same format) is delivered
 * first as ZT_FEED_CACHED, so a restart keeps its content in force before
 * the first fetch succeeds; its ETag / Last-Modified make that first fetch
 * a conditional one.
 *
 * The process must ignore SIGPIPE (the daemon does): a TLS peer closing
 * mid-write would otherwise kill it. libcurl honours https_proxy/no_proxy
 * from the environment.
 *
 * Content becomes "last good" only when opts.work (run on the worker
 * thread, e.g. zt_feed_load()) accepts it: a refused body is never saved
 * and its validators are never sent, so the next fetch downloads again.
 */
#ifndef ZT_FEEDS_FETCH_H
#define ZT_FEEDS_FETCH_H

#include <stdbool.h>
#include <stdint.h>

#include "feeds/feed.h"

struct zt_feed_fetcher;

enum zt_feed_outcome {
	ZT_FEED_NEW, /* new content, accepted and saved: body and work are set */
	ZT_FEED_CACHED, /* the saved last good copy, at start: body and work are set */
	ZT_FEED_UNCHANGED, /* 304, the same file, or the same bytes: what is in force stays */
	ZT_FEED_FAILED, /* fetch failed or content refused: what is in force stays */
};

struct zt_feed_done {
	unsigned int index; /* into zt_feed_fetcher_opts.feeds */
	const char *name;
	enum zt_feed_outcome outcome;
	int err; /* FAILED: -errno */
	char msg[512]; /* FAILED: what happened, where; else a warning or "" */
	long http_status; /* last HTTP status, 0 for files */
	const struct zt_feed_body *body; /* NEW, CACHED: valid during the callback only */
	void *work; /* NEW, CACHED: what opts.work produced; the callback owns it */
	unsigned int failures; /* consecutive failed attempts, this one included */
	bool will_retry; /* FAILED: a quick retry (backoff) is scheduled */
	uint64_t last_good_unix; /* when the content in force was fetched; 0: none yet */
	uint64_t attempt_ns; /* how long this attempt took */
	uint64_t next_mono_ns; /* CLOCK_MONOTONIC time of the next attempt */
	size_t bytes; /* bytes received (NEW, CACHED) */
};

/*
 * Runs on the worker thread for every new body. 0 accepts it (*out is
 * handed to done() as work); -errno refuses it with msg saying why.
 */
typedef int (*zt_feed_work_fn)(void *ctx, unsigned int index, const struct zt_feed_config *fc,
			       const struct zt_feed_body *body, void **out, char *msg,
			       size_t msglen);
/* Runs on the thread that calls zt_feed_fetcher_dispatch(). */
typedef void (*zt_feed_done_fn)(void *ctx, const struct zt_feed_done *d);
/* Frees a work result that was never delivered (at stop). */
typedef void (*zt_feed_work_free_fn)(void *ctx, void *work);

struct zt_feed_fetcher_opts {
	const struct zt_feed_config *feeds; /* copied */
	unsigned int n_feeds;
	const char *state_dir; /* last good copies in <state_dir>/feeds/; NULL or "": none */
	zt_feed_work_fn work; /* NULL: every non-empty body is accepted */
	void *work_ctx;
	zt_feed_work_free_fn work_free;
	zt_feed_done_fn done;
	void *done_ctx;
	uint64_t retry_base_ns; /* first retry after this, doubling per failure; 0: 1 s */
	uint64_t debounce_ns; /* a changed file is read this long after the event; 0: 100 ms */
};

/*
 * Copies the feeds, creates <state_dir>/feeds, starts the worker. 0 or
 * -errno with err saying what (and *out NULL).
 */
int zt_feed_fetcher_init(struct zt_feed_fetcher **out, const struct zt_feed_fetcher_opts *o,
			 char *err, size_t errlen);
/* Readable (EPOLLIN) when completions wait for zt_feed_fetcher_dispatch(). */
int zt_feed_fetcher_fd(const struct zt_feed_fetcher *f);
/*
 * Delivers every waiting completion to opts.done; returns how many. done()
 * may call zt_feed_fetcher_refresh(), never zt_feed_fetcher_stop().
 */
int zt_feed_fetcher_dispatch(struct zt_feed_fetcher *f);
/*
 * Fetch feed index (-1: all) now. force: unconditionally (no ETag,
 * If-Modified-Since or file fingerprint), for a reload after an apply
 * failed. -ENOENT for an index out of range.
 */
int zt_feed_fetcher_refresh(struct zt_feed_fetcher *f, int index, bool force);
/* Aborts a transfer in progress, joins the worker, frees everything; NULL is fine. */
void zt_feed_fetcher_stop(struct zt_feed_fetcher *f);

#endif
