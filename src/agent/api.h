/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The unix-socket API server. Non-blocking, driven by the daemon's loop;
 * any number of requests per connection, answered in order; a connection
 * that sends a frame over ZT_API_MAX_MSG or malformed CBOR gets an error
 * reply and is closed. The socket is created with mode 0600 (its directory
 * 0700 when the server creates it). At most 64 connections at once.
 */
#ifndef ZT_API_H
#define ZT_API_H

#include <cbor.h>
#include <stddef.h>

#include "agent/loop.h"

struct zt_api;

/*
 * A handler gets the request map (args live in it beside "op"). On success
 * it returns 0 and may set *data (its reference passes to the server; NULL
 * means a reply without data). On failure it returns -errno and writes a
 * message for the operator to err (the server replies {"ok": false, ...}).
 */
typedef int (*zt_api_handler)(void *ctx, const cbor_item_t *req, cbor_item_t **data, char *err,
			      size_t errlen);

/*
 * Binds path and registers with the loop. Refuses (-EADDRINUSE) when another
 * live process answers on path; removes a stale socket file otherwise.
 * Does not log; on failure err says what went wrong.
 */
int zt_api_init(struct zt_api **api, struct zt_loop *loop, const char *path, char *err,
		size_t errlen);
/* Registers op -> handler; at most 64 ops. -EEXIST for a duplicate op. */
int zt_api_register(struct zt_api *api, const char *op, zt_api_handler fn, void *ctx);
/*
 * Runs op's handler in the caller's thread (the loop's), as a client's
 * request would: what SIGHUP does is what ztctl does. -ENOENT: no such op.
 */
int zt_api_invoke(struct zt_api *api, const char *op, const cbor_item_t *req, cbor_item_t **data,
		  char *err, size_t errlen);
/* Closes connections and the socket, unlinks the socket file; NULL is fine. */
void zt_api_stop(struct zt_api *api);

#endif
