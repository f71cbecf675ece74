// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "api.h"
#include "apimsg.h"
#include "util.h"

#define MAX_OPS 64
#define MAX_CONNS 64
#define OP_LEN 32

struct conn {
	struct zt_api *api;
	int fd;
	uint8_t hdr[ZT_API_HDR_LEN];
	size_t hdr_got;
	uint8_t *payload;
	uint32_t plen;
	size_t pgot;
	uint8_t *out; /* pending reply bytes */
	size_t out_len, out_off;
	bool close_after_write;
	struct conn *next;
};

struct zt_api {
	struct zt_loop *loop;
	int lfd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct {
		char op[OP_LEN];
		zt_api_handler fn;
		void *ctx;
	} ops[MAX_OPS];
	int nops;
	struct conn *conns;
	int nconns;
};

static void conn_close(struct conn *c)
{
	struct zt_api *api = c->api;
	struct conn **pp;

	for (pp = &api->conns; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	api->nconns--;
	zt_loop_del(api->loop, c->fd);
	close(c->fd);
	free(c->payload);
	free(c->out);
	free(c);
}

/* Writes what is pending; returns -1 when the connection was closed. */
static int conn_flush(struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				zt_loop_mod(c->api->loop, c->fd, EPOLLOUT);
				return 0;
			}
			conn_close(c);
			return -1;
		}
		c->out_off += (size_t)w;
	}
	free(c->out);
	c->out = NULL;
	c->out_len = c->out_off = 0;
	if (c->close_after_write) {
		conn_close(c);
		return -1;
	}
	zt_loop_mod(c->api->loop, c->fd, EPOLLIN);
	return 0;
}

static void queue_reply(struct conn *c, cbor_item_t *reply)
{
	uint8_t *f;
	size_t n;

	if (!reply || zt_msg_encode(reply, &f, &n) < 0) {
		c->close_after_write = true;
		return;
	}
	c->out = f;
	c->out_len = n;
	c->out_off = 0;
}

static cbor_item_t *error_reply(int r, const char *msg)
{
	cbor_item_t *m = zt_cbor_map();

	if (!m || zt_cbor_put_bool(m, "ok", false) || zt_cbor_put_str(m, "error", msg) ||
	    zt_cbor_put_u64(m, "errno", (uint64_t)(r < 0 ? -r : r))) {
		if (m)
			cbor_decref(&m);
		return NULL;
	}
	return m;
}

static cbor_item_t *dispatch(struct zt_api *api, const uint8_t *buf, size_t len)
{
	cbor_item_t *req = NULL, *data = NULL, *reply;
	char err[1024] = "", op[OP_LEN];
	int r, i;

	r = zt_msg_decode(buf, len, &req, err, sizeof(err));
	if (r < 0)
		return error_reply(r, err);
	if (!cbor_isa_map(req)) {
		cbor_decref(&req);
		return error_reply(EINVAL, "a request is a CBOR map with an 'op' text");
	}
	r = zt_cbor_get_str(req, "op", op, sizeof(op));
	if (r < 0) {
		cbor_decref(&req);
		return error_reply(EINVAL, r == -ENOENT ? "the request has no 'op'" :
							  "'op' is not a short text");
	}
	for (i = 0; i < api->nops; i++)
		if (strcmp(api->ops[i].op, op) == 0)
			break;
	if (i == api->nops) {
		snprintf(err, sizeof(err), "unknown operation '%s'", op);
		cbor_decref(&req);
		return error_reply(EOPNOTSUPP, err);
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

static void on_conn(void *ctx, int fd, uint32_t events)
{
	struct conn *c = ctx;

	if (events & EPOLLOUT) {
		if (conn_flush(c) < 0)
			return;
	}
	if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)) || c->out)
		return;
	for (;;) {
		ssize_t n;

		if (c->hdr_got < ZT_API_HDR_LEN) {
			n = read(fd, c->hdr + c->hdr_got, ZT_API_HDR_LEN - c->hdr_got);
		} else {
			n = read(fd, c->payload + c->pgot, c->plen - c->pgot);
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			conn_close(c);
			return;
		}
		if (c->hdr_got < ZT_API_HDR_LEN) {
			c->hdr_got += (size_t)n;
			if (c->hdr_got < ZT_API_HDR_LEN)
				continue;
			c->plen = (uint32_t)c->hdr[0] << 24 | (uint32_t)c->hdr[1] << 16 |
				  (uint32_t)c->hdr[2] << 8 | c->hdr[3];
			if (c->plen == 0 || c->plen > ZT_API_MAX_MSG) {
				char msg[128];

				snprintf(msg, sizeof(msg),
					 "frame of %u bytes refused (1 to %u allowed)", c->plen,
					 ZT_API_MAX_MSG);
				cbor_item_t *rep = error_reply(EMSGSIZE, msg);

				queue_reply(c, rep);
				if (rep)
					cbor_decref(&rep);
				c->close_after_write = true;
				conn_flush(c);
				return;
			}
			c->payload = malloc(c->plen);
			c->pgot = 0;
			if (!c->payload) {
				conn_close(c);
				return;
			}
			continue;
		}
		c->pgot += (size_t)n;
		if (c->pgot < c->plen)
			continue;
		{
			cbor_item_t *reply = dispatch(c->api, c->payload, c->plen);

			free(c->payload);
			c->payload = NULL;
			c->hdr_got = 0;
			queue_reply(c, reply);
			if (reply)
				cbor_decref(&reply);
		}
		/* One request at a time: read the next when this reply is out. */
		if (conn_flush(c) < 0 || c->out)
			return;
	}
}

static void on_listen(void *ctx, int fd, uint32_t events)
{
	struct zt_api *api = ctx;

	for (;;) {
		int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct conn *c;

		if (cfd < 0)
			return;
		if (api->nconns >= MAX_CONNS) {
			close(cfd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(cfd);
			continue;
		}
		c->api = api;
		c->fd = cfd;
		if (zt_loop_add(api->loop, cfd, EPOLLIN, on_conn, c) < 0) {
			close(cfd);
			free(c);
			continue;
		}
		c->next = api->conns;
		api->conns = c;
		api->nconns++;
	}
}

/* 0 when nothing answers on path (a stale socket is removed), else -errno. */
static int claim_path(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, r;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen,
			 "%s exists and is not a socket; move it away or set api_socket", path);
		return -EEXIST;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
	if (r == 0) {
		snprintf(err, errlen, "another ztagent answers on %s; stop it first", path);
		return -EADDRINUSE;
	}
	if (unlink(path) < 0 && errno != ENOENT) {
		r = -errno;
		snprintf(err, errlen, "cannot remove the stale socket %s: %s", path, strerror(-r));
		return r;
	}
	return 0;
}

int zt_api_init(struct zt_api **out, struct zt_loop *loop, const char *path, char *err,
		size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct zt_api *api;
	char dir[sizeof(sa.sun_path)];
	char *slash;
	mode_t old;
	int r;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "api_socket: '%s' is longer than %zu bytes", path,
			 sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	strcpy(dir, path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		r = zt_mkdir_p(dir, 0700);
		if (r < 0) {
			snprintf(err, errlen, "cannot create %s: %s", dir, strerror(-r));
			return r;
		}
	}
	r = claim_path(path, err, errlen);
	if (r < 0)
		return r;
	api = calloc(1, sizeof(*api));
	if (!api)
		return -ENOMEM;
	api->loop = loop;
	strcpy(api->path, path);
	api->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (api->lfd < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot create a unix socket: %s", strerror(-r));
		free(api);
		return r;
	}
	strcpy(sa.sun_path, path);
	old = umask(0177);
	r = bind(api->lfd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0 || listen(api->lfd, 64) < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot listen on %s: %s", path, strerror(-r));
		close(api->lfd);
		free(api);
		return r;
	}
	/* Explicit, whatever the umask did. */
	chmod(path, 0600);
	r = zt_loop_add(loop, api->lfd, EPOLLIN, on_listen, api);
	if (r < 0) {
		snprintf(err, errlen, "cannot watch the API socket: %s", strerror(-r));
		close(api->lfd);
		unlink(path);
		free(api);
		return r;
	}
	*out = api;
	return 0;
}

int zt_api_register(struct zt_api *api, const char *op, zt_api_handler fn, void *ctx)
{
	if (strlen(op) >= OP_LEN)
		return -ENAMETOOLONG;
	for (int i = 0; i < api->nops; i++)
		if (strcmp(api->ops[i].op, op) == 0)
			return -EEXIST;
	if (api->nops >= MAX_OPS)
		return -ENOSPC;
	strcpy(api->ops[api->nops].op, op);
	api->ops[api->nops].fn = fn;
	api->ops[api->nops].ctx = ctx;
	api->nops++;
	return 0;
}

void zt_api_stop(struct zt_api *api)
{
	if (!api)
		return;
	while (api->conns) {
		struct conn *c = api->conns;

		/* Best effort: a reply still queued goes out before the close. */
		if (c->out)
			(void)!write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
		conn_close(c);
	}
	zt_loop_del(api->loop, api->lfd);
	close(api->lfd);
	unlink(api->path);
	free(api);
}
