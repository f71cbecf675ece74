// SPDX-License-Identifier: GPL-2.0-only
/*
 * The API server: a non-blocking unix stream socket on the daemon's loop.
 *
 * Each connection reads one frame at a time (header, then payload), answers
 * it, and reads the next only when the answer is out, so requests are
 * answered in order and a client that does not read its replies stops being
 * read from. Payload buffers grow with the bytes that arrive, never with
 * what a header announces, and all connections together hold at most
 * RX_BUDGET bytes of them.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "agent/api.h"
#include "agent/apimsg.h"
#include "agent/util.h"

#define MAX_OPS 64
#define MAX_CONNS 64
#define OP_MAX 64 /* op names, NUL included */
#define BACKLOG 64
#define ERR_MAX 512
#define IDLE_NS (60ULL * 1000000000ULL) /* a request must complete within this */
#define SWEEP_NS (5ULL * 1000000000ULL)
#define RX_CHUNK (64u << 10)
#define RX_BUDGET ((size_t)256 << 20)

struct conn {
	struct zt_api *api;
	int fd;
	uint32_t events; /* what the loop watches for */
	uint8_t hdr[ZT_API_HDR_LEN];
	size_t hdr_got;
	uint32_t in_len; /* announced payload length, once the header is complete */
	uint8_t *in;
	size_t in_cap, in_got;
	uint8_t *out; /* the reply being written */
	size_t out_len, out_off;
	bool closing; /* close once the reply is out */
	uint64_t active_ns; /* accept, last complete request, or last write progress */
	struct conn *prev, *next;
};

struct zt_api {
	struct zt_loop *loop;
	int lfd;
	int timer_fd;
	bool accept_paused; /* out of fds: the listener is not watched until one frees */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	dev_t dev;
	ino_t ino;
	struct {
		char op[OP_MAX];
		zt_api_handler fn;
		void *ctx;
	} ops[MAX_OPS];
	int nops;
	struct conn *conns;
	int nconns;
	size_t rx_bytes; /* payload buffers held by all connections */
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* ---- replies ---- */

static cbor_item_t *error_reply(int r, const char *msg)
{
	cbor_item_t *m = zt_cbor_map();

	if (!m)
		return NULL;
	if (zt_cbor_put_bool(m, "ok", false) || zt_cbor_put_str(m, "error", msg) ||
	    zt_cbor_put_u64(m, "errno", (uint64_t)(r < 0 ? -r : r))) {
		cbor_decref(&m);
		return NULL;
	}
	return m;
}

/* An op name as the operator sent it, safe to print: controls become '?'. */
static void printable(char *dst, size_t n, const char *src)
{
	size_t i;

	for (i = 0; src[i] && i + 1 < n; i++)
		dst[i] = (unsigned char)src[i] < 0x20 || src[i] == 0x7f ? '?' : src[i];
	dst[i] = '\0';
}

/* Answers one request payload; *fatal when the connection must close after the reply. */
static cbor_item_t *handle(struct zt_api *api, const uint8_t *buf, size_t len, bool *fatal)
{
	cbor_item_t *req = NULL, *data = NULL, *reply;
	char err[ERR_MAX] = "", op[OP_MAX], shown[OP_MAX + 8], msg[ERR_MAX + 64];
	int r, i;

	r = zt_msg_decode(buf, len, &req, err, sizeof(err));
	if (r < 0) {
		*fatal = true;
		snprintf(msg, sizeof(msg), "malformed request: %s", err);
		return error_reply(r, msg);
	}
	r = zt_cbor_get_str(req, "op", op, sizeof(op));
	if (r < 0) {
		cbor_decref(&req);
		return error_reply(EINVAL, r == -ENOENT ? "the request has no 'op' field" :
					   r == -E2BIG	? "'op' is too long or contains NUL" :
							  "'op' must be a text string");
	}
	for (i = 0; i < api->nops; i++)
		if (strcmp(api->ops[i].op, op) == 0)
			break;
	if (i == api->nops) {
		cbor_decref(&req);
		printable(shown, sizeof(shown), op);
		snprintf(msg, sizeof(msg), "unknown operation '%s'", shown);
		return error_reply(EOPNOTSUPP, msg);
	}
	r = api->ops[i].fn(api->ops[i].ctx, req, &data, err, sizeof(err));
	cbor_decref(&req);
	if (r < 0) {
		if (data)
			cbor_decref(&data);
		if (!err[0])
			snprintf(err, sizeof(err), "%s failed: %s", op, strerror(-r));
		return error_reply(r, err);
	}
	reply = zt_cbor_map();
	if (!reply || zt_cbor_put_bool(reply, "ok", true) ||
	    (data && zt_cbor_put(reply, "data", data))) {
		if (data)
			cbor_decref(&data);
		if (reply)
			cbor_decref(&reply);
		return error_reply(ENOMEM, "out of memory building the reply");
	}
	return reply;
}

/* ---- connections ---- */

static void free_in(struct conn *c)
{
	c->api->rx_bytes -= c->in_cap;
	free(c->in);
	c->in = NULL;
	c->in_cap = c->in_got = 0;
	c->in_len = 0;
	c->hdr_got = 0;
}

static void resume_accept(struct zt_api *api)
{
	if (api->accept_paused && zt_loop_mod(api->loop, api->lfd, EPOLLIN) == 0)
		api->accept_paused = false;
}

static void conn_close(struct conn *c)
{
	struct zt_api *api = c->api;

	if (c->prev)
		c->prev->next = c->next;
	else
		api->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	api->nconns--;
	zt_loop_del(api->loop, c->fd);
	close(c->fd);
	free_in(c);
	free(c->out);
	free(c);
	resume_accept(api);
}

static int watch(struct conn *c, uint32_t events)
{
	int r;

	if (c->events == events)
		return 0;
	r = zt_loop_mod(c->api->loop, c->fd, events);
	if (r == 0)
		c->events = events;
	return r;
}

/* Writes what is pending. Returns -1 when the connection is gone (closed here). */
static int conn_flush(struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (watch(c, EPOLLOUT) < 0)
				goto gone;
			return 0;
		}
		if (w <= 0)
			goto gone;
		c->out_off += (size_t)w;
		c->active_ns = now_ns();
	}
	free(c->out);
	c->out = NULL;
	c->out_len = c->out_off = 0;
	if (c->closing || watch(c, EPOLLIN) < 0)
		goto gone;
	return 0;
gone:
	conn_close(c);
	return -1;
}

/* Queues reply (consumed) and starts writing it. Returns -1 when the connection is gone. */
static int conn_reply(struct conn *c, cbor_item_t *reply)
{
	int r;

	if (!reply) {
		conn_close(c);
		return -1;
	}
	r = zt_msg_encode(reply, &c->out, &c->out_len);
	cbor_decref(&reply);
	if (r == -EMSGSIZE) {
		char msg[160];

		snprintf(
			msg, sizeof(msg),
			"the reply is larger than the %u MiB message limit; ask for less (e.g. 'ztctl block list --limit N')",
			ZT_API_MAX_MSG >> 20);
		reply = error_reply(EMSGSIZE, msg);
		r = reply ? zt_msg_encode(reply, &c->out, &c->out_len) : -ENOMEM;
		if (reply)
			cbor_decref(&reply);
	}
	if (r < 0) {
		conn_close(c);
		return -1;
	}
	c->out_off = 0;
	return conn_flush(c);
}

/* Refuses the current frame with an error and closes once that is out. */
static int conn_refuse(struct conn *c, int r, const char *msg)
{
	c->closing = true;
	free_in(c);
	return conn_reply(c, error_reply(r, msg));
}

/* Makes room for more payload; false (and a refusal sent) when over budget. */
static int grow_in(struct conn *c)
{
	struct zt_api *api = c->api;
	size_t ncap = c->in_cap ? c->in_cap * 2 : RX_CHUNK;
	uint8_t *nb;

	if (ncap > c->in_len)
		ncap = c->in_len;
	if (api->rx_bytes - c->in_cap + ncap > RX_BUDGET)
		return conn_refuse(
			c, -EBUSY,
			"the daemon is busy receiving other large requests; retry in a moment");
	nb = realloc(c->in, ncap);
	if (!nb)
		return conn_refuse(c, -ENOMEM, "out of memory receiving the request");
	api->rx_bytes += ncap - c->in_cap;
	c->in = nb;
	c->in_cap = ncap;
	return 0;
}

/* Reads until a frame is complete (and answered) or the socket is drained; -1: gone. */
static int conn_read(struct conn *c)
{
	for (;;) {
		bool in_hdr = c->hdr_got < ZT_API_HDR_LEN;
		ssize_t n;

		if (!in_hdr && c->in_got == c->in_cap && grow_in(c) < 0)
			return -1;
		if (c->closing)
			return 0; /* refused while growing: the refusal is on its way */
		if (in_hdr)
			n = read(c->fd, c->hdr + c->hdr_got, ZT_API_HDR_LEN - c->hdr_got);
		else
			n = read(c->fd, c->in + c->in_got, c->in_cap - c->in_got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n <= 0) {
			/* EOF or error; mid-frame there is nobody left to tell. */
			conn_close(c);
			return -1;
		}
		if (in_hdr) {
			c->hdr_got += (size_t)n;
			if (c->hdr_got < ZT_API_HDR_LEN)
				continue;
			c->in_len = (uint32_t)c->hdr[0] << 24 | (uint32_t)c->hdr[1] << 16 |
				    (uint32_t)c->hdr[2] << 8 | c->hdr[3];
			if (c->in_len == 0 || c->in_len > ZT_API_MAX_MSG) {
				char msg[128];

				snprintf(msg, sizeof(msg),
					 "frame of %u bytes refused: 1 to %u bytes allowed",
					 c->in_len, ZT_API_MAX_MSG);
				return conn_refuse(c, -EMSGSIZE, msg);
			}
			continue;
		}
		c->in_got += (size_t)n;
		if (c->in_got < c->in_len)
			continue;
		{
			bool fatal = false;
			cbor_item_t *reply = handle(c->api, c->in, c->in_len, &fatal);

			free_in(c);
			c->closing = fatal;
			c->active_ns = now_ns();
			/* One request per wake-up: the loop is level-triggered, others get a turn. */
			return conn_reply(c, reply);
		}
	}
}

static void on_conn(void *ctx, int fd, uint32_t events)
{
	struct conn *c = ctx;

	if (c->out) {
		/* Waiting to write: EPOLLOUT, or HUP/ERR, which the send reports. */
		conn_flush(c);
		return;
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		conn_read(c);
}

static void refuse_conn(int fd, const char *msg)
{
	cbor_item_t *reply = error_reply(EMFILE, msg);
	uint8_t *f;
	size_t n;

	/* Best effort on a fresh socket: the send buffer is empty. */
	if (reply && zt_msg_encode(reply, &f, &n) == 0) {
		(void)!send(fd, f, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		free(f);
	}
	if (reply)
		cbor_decref(&reply);
	close(fd);
}

static void on_listen(void *ctx, int fd, uint32_t events)
{
	struct zt_api *api = ctx;

	for (;;) {
		int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct conn *c;

		if (cfd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				/* Else the listener stays readable and the loop spins. */
				if (zt_loop_mod(api->loop, fd, 0) == 0)
					api->accept_paused = true;
			}
			return;
		}
		if (api->nconns >= MAX_CONNS) {
			refuse_conn(
				cfd,
				"too many API connections (64); close idle ztctl sessions and retry");
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(cfd);
			continue;
		}
		c->api = api;
		c->fd = cfd;
		c->events = EPOLLIN;
		c->active_ns = now_ns();
		if (zt_loop_add(api->loop, cfd, EPOLLIN, on_conn, c) < 0) {
			close(cfd);
			free(c);
			continue;
		}
		c->next = api->conns;
		if (c->next)
			c->next->prev = c;
		api->conns = c;
		api->nconns++;
	}
}

static void on_sweep(void *ctx, int fd, uint32_t events)
{
	struct zt_api *api = ctx;
	uint64_t now = now_ns();
	struct conn *c, *next;

	for (c = api->conns; c; c = next) {
		next = c->next;
		if (now - c->active_ns > IDLE_NS)
			conn_close(c);
	}
	resume_accept(api);
}

/* ---- the socket ---- */

/* 0 when path is free (a stale socket is removed), else -errno and err. */
static int claim_path(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, r;

	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		r = -errno;
		zt_seterr(err, errlen, "cannot inspect the API socket path %s: %s", path,
			  strerror(-r));
		return r;
	}
	if (!S_ISSOCK(st.st_mode)) {
		zt_seterr(
			err, errlen,
			"%s exists and is not a socket; move it away or choose another api_socket",
			path);
		return -EEXIST;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		r = -errno;
		zt_seterr(err, errlen, "cannot create a unix socket: %s", strerror(-r));
		return r;
	}
	r = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? -errno : 0;
	close(fd);
	/* EAGAIN: a live listener whose backlog is full. */
	if (r == 0 || r == -EAGAIN) {
		zt_seterr(err, errlen,
			  "another ztagent answers on %s; stop it first, or set another api_socket",
			  path);
		return -EADDRINUSE;
	}
	if (r != -ECONNREFUSED && r != -ENOENT) {
		zt_seterr(err, errlen, "cannot tell whether a daemon answers on %s: %s", path,
			  strerror(-r));
		return r;
	}
	if (unlink(path) < 0 && errno != ENOENT) {
		r = -errno;
		zt_seterr(err, errlen, "cannot remove the stale socket %s: %s", path, strerror(-r));
		return r;
	}
	return 0;
}

static int make_parent(const char *path, char *err, size_t errlen)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *slash;
	struct stat st;
	int r;

	memcpy(dir, path, strlen(path) + 1);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	if (stat(dir, &st) == 0) {
		if (S_ISDIR(st.st_mode))
			return 0;
		zt_seterr(err, errlen, "%s, the API socket's directory, is not a directory", dir);
		return -ENOTDIR;
	}
	r = zt_mkdir_p(dir, 0700);
	if (r < 0)
		zt_seterr(err, errlen, "cannot create %s for the API socket: %s", dir,
			  strerror(-r));
	return r;
}

int zt_api_init(struct zt_api **out, struct zt_loop *loop, const char *path, char *err,
		size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct zt_api *api;
	struct stat st;
	size_t len;
	mode_t old;
	int r;

	if (!out || !loop || !path || !*path) {
		zt_seterr(err, errlen, "the API socket path is empty");
		return -EINVAL;
	}
	len = strlen(path);
	if (len >= sizeof(sa.sun_path)) {
		zt_seterr(
			err, errlen,
			"API socket path %s is %zu bytes long; a unix socket path has at most %zu",
			path, len, sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	r = make_parent(path, err, errlen);
	if (r < 0)
		return r;
	r = claim_path(path, err, errlen);
	if (r < 0)
		return r;
	api = calloc(1, sizeof(*api));
	if (!api) {
		zt_seterr(err, errlen, "out of memory");
		return -ENOMEM;
	}
	api->loop = loop;
	api->timer_fd = -1;
	memcpy(api->path, path, len + 1);
	memcpy(sa.sun_path, path, len + 1);
	api->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (api->lfd < 0) {
		r = -errno;
		zt_seterr(err, errlen, "cannot create a unix socket: %s", strerror(-r));
		free(api);
		return r;
	}
	/* 0600 from the start: no window in which another user can connect. */
	old = umask(0177);
	r = bind(api->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? -errno : 0;
	umask(old);
	if (r < 0) {
		zt_seterr(err, errlen, "cannot bind the API socket %s: %s", path, strerror(-r));
		goto fail_close;
	}
	if (stat(path, &st) == 0) {
		api->dev = st.st_dev;
		api->ino = st.st_ino;
	}
	if (listen(api->lfd, BACKLOG) < 0) {
		r = -errno;
		zt_seterr(err, errlen, "cannot listen on %s: %s", path, strerror(-r));
		goto fail_unlink;
	}
	r = zt_loop_add(loop, api->lfd, EPOLLIN, on_listen, api);
	if (r < 0) {
		zt_seterr(err, errlen, "cannot watch the API socket: %s", strerror(-r));
		goto fail_unlink;
	}
	r = zt_loop_add_timer(loop, SWEEP_NS, on_sweep, api);
	if (r < 0) {
		zt_seterr(err, errlen, "cannot create the API idle timer: %s", strerror(-r));
		zt_loop_del(loop, api->lfd);
		goto fail_unlink;
	}
	api->timer_fd = r;
	*out = api;
	return 0;
fail_unlink:
	unlink(path);
fail_close:
	close(api->lfd);
	free(api);
	return r;
}

int zt_api_register(struct zt_api *api, const char *op, zt_api_handler fn, void *ctx)
{
	size_t len;

	if (!api || !op || !fn)
		return -EINVAL;
	len = strlen(op);
	if (len == 0 || len >= OP_MAX)
		return -EINVAL;
	for (int i = 0; i < api->nops; i++)
		if (strcmp(api->ops[i].op, op) == 0)
			return -EEXIST;
	if (api->nops >= MAX_OPS)
		return -ENOSPC;
	memcpy(api->ops[api->nops].op, op, len + 1);
	api->ops[api->nops].fn = fn;
	api->ops[api->nops].ctx = ctx;
	api->nops++;
	return 0;
}

void zt_api_stop(struct zt_api *api)
{
	struct stat st;

	if (!api)
		return;
	while (api->conns) {
		struct conn *c = api->conns;

		/* Best effort: a reply still queued goes out before the close. */
		if (c->out)
			(void)!send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
				    MSG_NOSIGNAL | MSG_DONTWAIT);
		conn_close(c);
	}
	if (api->timer_fd >= 0)
		zt_loop_del(api->loop, api->timer_fd);
	zt_loop_del(api->loop, api->lfd);
	close(api->lfd);
	/* Only our own socket: a newer daemon may have replaced it. */
	if (lstat(api->path, &st) == 0 && st.st_dev == api->dev && st.st_ino == api->ino)
		unlink(api->path);
	free(api);
}

int zt_api_invoke(struct zt_api *api, const char *op, const cbor_item_t *req, cbor_item_t **data,
		  char *err, size_t errlen)
{
	for (int i = 0; api && i < api->nops; i++)
		if (strcmp(api->ops[i].op, op) == 0) {
			*data = NULL;
			return api->ops[i].fn(api->ops[i].ctx, req, data, err, errlen);
		}
	snprintf(err, errlen, "%s: no such operation", op);
	return -ENOENT;
}
